"""The `/v1/images` management API: requests read by goodeye.images.requests, work done by goodeye.images.service."""

from flask import Blueprint, jsonify, request

from goodeye.context import current_context
from goodeye.identity.auth import required_project_id
from goodeye.images import records, requests, service
from goodeye.models import iso
from goodeye.serving import signing

bp = Blueprint("images", __name__)


def _record_response(image, status=200):
    response = jsonify(records.image_record(current_context().settings, image))
    response.status_code = status
    return response


@bp.post("/v1/images")
def upload():
    project_id = required_project_id()
    ctx = current_context()
    placement, data = requests.upload_request(ctx.image_limits.max_bytes)
    image = service.create_image(ctx, project_id, data, placement)
    return _record_response(image, 201)


@bp.put("/v1/images/<image_id>/file")
def replace_file(image_id):
    project_id = required_project_id()
    ctx = current_context()
    strip, data = requests.replace_request(ctx.image_limits.max_bytes)
    return _record_response(service.replace_image_bytes(ctx, project_id, image_id, data, strip))


@bp.post("/v1/images/<image_id>/signed-url")
def signed_url(image_id):
    project_id = required_project_id()
    ctx = current_context()
    expires_in, variant = requests.sign_request(ctx.settings.variant_sizes)
    url, expires_at = service.sign_image_url(ctx, project_id, image_id, expires_in, variant)
    return jsonify(records.signed_url_record(url, expires_at))


@bp.post("/v1/signing-key/rotate")
def rotate_signing_key():
    return jsonify({"rotated_at": iso(signing.rotate_secret(required_project_id()))})


@bp.get("/v1/images")
def list_images():
    project_id = required_project_id()
    query = requests.list_query(request.args)
    images, last_pk = service.list_images(project_id, query)
    return jsonify(records.image_page(current_context().settings, images, last_pk))


@bp.get("/v1/images/<path:image_id>")
def get_image(image_id):
    return _record_response(service.get_image(required_project_id(), image_id))


@bp.patch("/v1/images/<path:image_id>")
def update_image(image_id):
    project_id = required_project_id()
    return _record_response(service.update_image(current_context(), project_id, image_id, requests.image_changes()))


@bp.delete("/v1/images/<path:image_id>")
def delete_image(image_id):
    service.delete_image(current_context(), required_project_id(), image_id)
    return "", 204
