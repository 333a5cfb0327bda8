"""`GET /v1/images/{id}/similar` and `POST /v1/images/similar`: thin over goodeye.similar.service."""

from flask import Blueprint, jsonify, request

from goodeye.context import current_context
from goodeye.identity.auth import required_project_id
from goodeye.images.requests import read_image_request
from goodeye.similar import service

bp = Blueprint("similar", __name__)

# The JSON types of the search body's fields, as goodeye/openapi.yaml declares them.
SEARCH_JSON_TYPES = {"data": ("string",), "max_distance": ("integer",), "limit": ("integer",)}


def _results(images):
    settings = current_context().settings
    return jsonify({"data": [service.similar_record(settings, image) for image in images]})


@bp.get("/v1/images/<path:image_id>/similar")
def similar_to_image(image_id):
    project_id = required_project_id()
    max_distance, limit = service.parse_search(request.args)
    return _results(service.similar_to_image(project_id, image_id, max_distance, limit))


@bp.post("/v1/images/similar")
def similar_to_upload():
    project_id = required_project_id()
    ctx = current_context()
    (max_distance, limit), data = read_image_request(ctx.image_limits.max_bytes, SEARCH_JSON_TYPES, service.parse_search)
    return _results(service.similar_to_bytes(ctx, project_id, data, max_distance, limit))
