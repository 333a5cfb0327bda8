"""`GET /v1/images/{id}/similar` and `POST /v1/images/similar`: thin over goodeye.similar.service."""

from flask import Blueprint, jsonify, request

from goodeye.context import current_context
from goodeye.identity.auth import required_project_id
from goodeye.images.requests import read_image_request
from goodeye.similar import records, requests, service

bp = Blueprint("similar", __name__)

def _results(images):
    settings = current_context().settings
    return jsonify({"data": [records.similar_record(settings, image) for image in images]})


@bp.get("/v1/images/<path:image_id>/similar")
def similar_to_image(image_id):
    project_id = required_project_id()
    max_distance, limit = requests.parse_search(request.args)
    return _results(service.similar_to_image(project_id, image_id, max_distance, limit))


@bp.post("/v1/images/similar")
def similar_to_upload():
    project_id = required_project_id()
    ctx = current_context()
    (max_distance, limit), data = read_image_request(ctx.image_limits.max_bytes, requests.SEARCH_JSON_TYPES, requests.parse_search)
    return _results(service.similar_to_bytes(ctx, project_id, data, max_distance, limit))
