"""The `/v1/images` requests read once at the edge: form fields, JSON bodies and query strings into typed arguments.

The service below never sees wire text ("true", "1", a cursor, a base64 string):
it takes a Placement, an ImageChanges, an ImageListQuery and plain numbers.
"""

import base64
import binascii
import io
import re
from dataclasses import dataclass

from flask import current_app, request
from werkzeug.datastructures import MultiDict

from goodeye.errors import ImageTooLarge, InvalidRequest
from goodeye.http import json_body
from goodeye.images.service import MAX_LIST_LIMIT, SOURCES, VISIBILITIES, Placement
from goodeye.parsing import boolean_field, flag, refuse_unknown_fields, whole_number
from goodeye.serving import signing
from goodeye.variants.params import parse_variant_params

ALIAS_PATTERN = re.compile(r"^@?([a-z0-9][a-z0-9_-]{0,63})\Z")
# Ten years: long enough for any real expiry, short enough for every datetime type.
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600
DEFAULT_LIST_LIMIT = "20"

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
UPDATE_FIELDS = ("visibility", "ttl_seconds", "permanent", "alias", "filename")


@dataclass(frozen=True)
class ImageChanges:
    """What a PATCH changes: each `change_*` says whether its field was sent (None clears it)."""

    visibility: str | None = None
    change_expiry: bool = False
    ttl_seconds: int | None = None
    filename: str | None = None
    change_alias: bool = False
    alias: str | None = None


@dataclass(frozen=True)
class ImageListQuery:
    """A page request of `GET /v1/images`: filters, page size and the pk the page starts after."""

    source: str | None = None
    visibility: str | None = None
    limit: int = 20
    after_pk: int | None = None


def parse_visibility(value):
    """'public' or 'private', else InvalidRequest."""
    if value not in VISIBILITIES:
        raise InvalidRequest("visibility must be 'public' or 'private'.")
    return value


def parse_ttl(value):
    """A positive whole number of seconds, else InvalidRequest."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidRequest("ttl_seconds must be a positive whole number of seconds.")
    if value > MAX_TTL_SECONDS:
        raise InvalidRequest(f"ttl_seconds may be at most {MAX_TTL_SECONDS}.")
    return value


def parse_alias(value):
    """An alias as stored (without '@'), or None to clear; else InvalidRequest."""
    if value is None:
        return None
    match = ALIAS_PATTERN.match(value) if isinstance(value, str) else None
    if not match:
        raise InvalidRequest("alias must be '@' followed by 1-64 of a-z, 0-9, '_' and '-', starting with a letter or digit.")
    return match.group(1)


def placement_from(fields):
    """Validate the typed placement fields of an upload (the JSON body, or the form as typed here)."""
    ttl = fields.get("ttl_seconds")
    permanent = fields.get("permanent")
    if permanent is not None and not boolean_field(permanent, "permanent"):
        raise InvalidRequest("permanent only takes true (an image without ttl_seconds has no expiry).")
    if permanent is not None and ttl is not None:
        raise InvalidRequest("ttl_seconds and permanent cannot be used together.")
    return Placement(
        visibility=parse_visibility(fields.get("visibility", "private")),
        ttl_seconds=None if ttl is None else parse_ttl(ttl),
        filename=fields.get("filename"),
        alias=parse_alias(fields.get("alias")),
        strip_metadata=boolean_field(fields.get("strip_metadata", False), "strip_metadata"),
    )


def read_upload(stream, max_bytes):
    """The bytes of an uploaded file, or ImageTooLarge naming its whole size (read no further than the limit)."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        size = stream.seek(0, io.SEEK_END)
        raise ImageTooLarge(f"The image is {size} bytes; the limit is {max_bytes} bytes.")
    return data


def decode_base64_image(data, max_bytes):
    """The bytes of a base64 `data` field, checking its size before decoding."""
    if not isinstance(data, str) or not data:
        raise InvalidRequest("data must be a non-empty base64 string.")
    if len(data) > (max_bytes + 2) // 3 * 4 + 4:
        raise ImageTooLarge(f"The image is larger than the limit of {max_bytes} bytes.")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("data is not valid base64.") from None


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
        return read_fields(fields), read_upload(upload_file.stream, max_bytes)
    # The one JSON body as large as an image: its base64.
    body = json_body(json_types, max_bytes=current_app.config["MAX_CONTENT_LENGTH"])
    refuse_unknown_fields(body, json_types)
    return read_fields(body), decode_base64_image(body.get("data"), max_bytes)


def upload_request(max_bytes):
    """`POST /v1/images`: (Placement, bytes)."""
    return read_image_request(max_bytes, UPLOAD_JSON_TYPES, placement_from)


def replace_request(max_bytes):
    """`PUT /v1/images/{id}/file`: (whether to strip metadata, bytes)."""
    return read_image_request(max_bytes, REPLACE_JSON_TYPES, lambda fields: fields.get("strip_metadata", False))


def _typed_form_fields(form):
    """The multipart fields as the JSON body would carry them: text turned into numbers and booleans.

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


def image_changes():
    """`PATCH /v1/images/{id}`: the ImageChanges its JSON body asks for."""
    changes = json_body(UPDATE_JSON_TYPES)
    refuse_unknown_fields(changes, UPDATE_FIELDS)
    permanent = "permanent" in changes
    if permanent and changes["permanent"] is not True:
        raise InvalidRequest("permanent only takes true (to clear the expiry).")
    if permanent and "ttl_seconds" in changes:
        raise InvalidRequest("ttl_seconds and permanent cannot be used together.")
    visibility = parse_visibility(changes["visibility"]) if "visibility" in changes else None
    ttl = changes.get("ttl_seconds")
    ttl_seconds = None if ttl is None else parse_ttl(ttl)
    filename = changes.get("filename")
    if "filename" in changes and (not isinstance(filename, str) or not filename.strip()):
        raise InvalidRequest("filename must be a non-empty string.")
    return ImageChanges(
        visibility=visibility,
        change_expiry=permanent or "ttl_seconds" in changes,
        ttl_seconds=ttl_seconds,
        filename=filename,
        change_alias="alias" in changes,
        alias=parse_alias(changes["alias"]) if "alias" in changes else None,
    )


def encode_cursor(pk):
    """An opaque cursor for the page after the image with this pk."""
    return base64.urlsafe_b64encode(f"v1:{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor):
    """The pk a cursor points after, else InvalidRequest."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, text = raw.partition(":")
        pk = whole_number(text)
        if version != "v1" or pk is None:
            raise ValueError
        return pk
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidRequest("cursor is not valid; pass next_cursor from a previous page.") from None


def list_query(args):
    """`GET /v1/images`: the ImageListQuery of its query string (an empty parameter is an absent one)."""
    source = args.get("source") or None
    visibility = args.get("visibility") or None
    cursor = args.get("cursor") or None
    if source is not None and source not in SOURCES:
        raise InvalidRequest("source must be 'upload' or 'generated'.")
    if visibility is not None:
        parse_visibility(visibility)
    limit = whole_number(args.get("limit") or DEFAULT_LIST_LIMIT) or 0
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}.")
    return ImageListQuery(source, visibility, limit, decode_cursor(cursor) if cursor else None)


def sign_request(variant_sizes):
    """`POST /v1/images/{id}/signed-url`: (expires_in, variant pairs); no body asks for the original for an hour."""
    body = json_body(SIGN_JSON_TYPES) if request.content_length else {}
    expires_in, variant = signing.parse_sign_request(body)
    # The serving URL's own rules for variant values (sizes, fit with both sides, formats).
    parse_variant_params(MultiDict(variant), variant_sizes)
    return expires_in, variant
