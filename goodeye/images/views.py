"""The `/v1/images` management API: thin over goodeye.images.service."""

from flask import Blueprint, jsonify, request

from goodeye.context import current_context
from goodeye.errors import InvalidRequest
from goodeye.http import json_body
from goodeye.identity.auth import required_project_id
from goodeye.images import service

bp = Blueprint("images", __name__)

UPLOAD_JSON_FIELDS = {"data", "visibility", "ttl_seconds", "permanent", "filename", "alias", "strip_metadata"}


def _record_response(image, status=200):
    response = jsonify(service.image_record(current_context().settings, image))
    response.status_code = status
    return response


@bp.post("/v1/images")
def upload():
    project_id = required_project_id()
    ctx = current_context()
    if request.mimetype == "multipart/form-data":
        upload_file = request.files.get("file")
        if upload_file is None:
            raise InvalidRequest("Send the image as the multipart field 'file'.")
        fields = request.form.to_dict()
        fields.setdefault("filename", upload_file.filename)
        placement = service.placement_from(fields)
        data = service.read_upload(upload_file.stream, ctx.image_limits.max_bytes)
    else:
        body = json_body()
        unknown = set(body) - UPLOAD_JSON_FIELDS
        if unknown:
            raise InvalidRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.")
        placement = service.placement_from(body)
        data = service.decode_base64_image(body.get("data"), ctx.image_limits.max_bytes)
    image = service.create_image(ctx, project_id, data, placement)
    return _record_response(image, 201)


@bp.get("/v1/images")
def list_images():
    project_id = required_project_id()
    args = request.args
    images, next_cursor = service.list_images(
        project_id,
        source=args.get("source") or None,
        visibility=args.get("visibility") or None,
        limit=args.get("limit", "20"),
        cursor=args.get("cursor") or None,
    )
    settings = current_context().settings
    return jsonify({"data": [service.image_record(settings, image) for image in images], "next_cursor": next_cursor})


@bp.get("/v1/images/<path:image_id>")
def get_image(image_id):
    return _record_response(service.get_image(required_project_id(), image_id))


@bp.patch("/v1/images/<path:image_id>")
def update_image(image_id):
    project_id = required_project_id()
    return _record_response(service.update_image(current_context(), project_id, image_id, json_body()))


@bp.delete("/v1/images/<path:image_id>")
def delete_image(image_id):
    service.delete_image(current_context(), required_project_id(), image_id)
    return "", 204
