"""The `/v1/images` management API: thin over goodeye.images.service."""

from flask import Blueprint, current_app, jsonify, request

from goodeye.context import current_context
from goodeye.errors import InvalidRequest
from goodeye.http import json_body
from goodeye.identity.auth import required_project_id
from goodeye.images import service
from goodeye.models import iso
from goodeye.parsing import flag, whole_number
from goodeye.serving import signing

bp = Blueprint("images", __name__)

# The JSON types of each body's fields, as goodeye/openapi.yaml declares them.
UPLOAD_JSON_TYPES = {
    "data": ("string",),
    "visibility": ("string",),
    "ttl_seconds": ("integer",),
    "permanent": ("boolean",),
    "filename": ("string",),
    "alias": ("string",),
    "strip_metadata": ("boolean",),
}
REPLACE_JSON_TYPES = {"data": ("string",), "strip_metadata": ("boolean",)}
SIGN_JSON_TYPES = {"expires_in": ("integer",), "w": ("integer",), "h": ("integer",), "fit": ("string",), "fm": ("string",)}
UPDATE_JSON_TYPES = {
    "visibility": ("string",),
    "ttl_seconds": ("integer", "null"),
    "permanent": ("boolean",),
    "alias": ("string", "null"),
}


def _record_response(image, status=200):
    response = jsonify(service.image_record(current_context().settings, image))
    response.status_code = status
    return response


def read_image_request(max_bytes, json_types, read_fields):
    """An image sent as multipart `file` or JSON base64 `data` (with `json_types`): (read_fields(fields), bytes).

    The fields are read (and refused when bad) before the bytes are.
    """
    if request.mimetype == "multipart/form-data":
        upload_file = request.files.get("file")
        if upload_file is None:
            raise InvalidRequest("Send the image as the multipart field 'file'.")
        fields = _typed_form_fields(request.form)
        fields.setdefault("filename", upload_file.filename)
        return read_fields(fields), service.read_upload(upload_file.stream, max_bytes)
    # The one JSON body as large as an image: its base64.
    body = json_body(json_types, max_bytes=current_app.config["MAX_CONTENT_LENGTH"])
    unknown = set(body) - set(json_types)
    if unknown:
        raise InvalidRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    return read_fields(body), service.decode_base64_image(body.get("data"), max_bytes)


@bp.post("/v1/images")
def upload():
    project_id = required_project_id()
    ctx = current_context()
    placement, data = read_image_request(ctx.image_limits.max_bytes, UPLOAD_JSON_TYPES, service.placement_from)
    image = service.create_image(ctx, project_id, data, placement)
    return _record_response(image, 201)


@bp.put("/v1/images/<image_id>/file")
def replace_file(image_id):
    project_id = required_project_id()
    ctx = current_context()
    strip, data = read_image_request(
        ctx.image_limits.max_bytes, REPLACE_JSON_TYPES, lambda fields: fields.get("strip_metadata", False)
    )
    return _record_response(service.replace_image_bytes(ctx, project_id, image_id, data, strip))


@bp.post("/v1/images/<image_id>/signed-url")
def signed_url(image_id):
    project_id = required_project_id()
    # Every field has a default: no body at all asks for the original for an hour.
    body = json_body(SIGN_JSON_TYPES) if request.content_length else {}
    return jsonify(service.sign_image_url(current_context(), project_id, image_id, body))


@bp.post("/v1/signing-key/rotate")
def rotate_signing_key():
    return jsonify({"rotated_at": iso(signing.rotate_secret(required_project_id()))})


def _typed_form_fields(form):
    """The multipart fields as the JSON body would carry them: text turned into numbers and booleans here, at the edge.

    An empty field counts as absent, as HTML forms send every input.
    """
    fields = {name: value for name, value in form.items() if value != ""}
    if "ttl_seconds" in fields:
        fields["ttl_seconds"] = whole_number(fields["ttl_seconds"])
        if fields["ttl_seconds"] is None:
            raise InvalidRequest("ttl_seconds must be a positive whole number of seconds.")
    for name in ("permanent", "strip_metadata"):
        if name in fields:
            fields[name] = flag(fields[name])
            if fields[name] is None:
                raise InvalidRequest(f"{name} must be true or false.")
    return fields


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
    return _record_response(service.update_image(current_context(), project_id, image_id, json_body(UPDATE_JSON_TYPES)))


@bp.delete("/v1/images/<path:image_id>")
def delete_image(image_id):
    service.delete_image(current_context(), required_project_id(), image_id)
    return "", 204
