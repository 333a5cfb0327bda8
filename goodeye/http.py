"""HTTP plumbing shared by every API family: error envelopes, credentials, client IP, JSON bodies."""

import io
import json
import logging

from flask import Request, jsonify, request
from peewee import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed as WerkzeugMethodNotAllowed, RequestedRangeNotSatisfiable, RequestEntityTooLarge
from werkzeug.routing import PathConverter

from goodeye import metrics
from goodeye.db import discard_connection
from goodeye.errors import (
    GoodeyeError,
    ImageTooLarge,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    QuotaExceeded,
    RangeNotSatisfiable,
    RateLimited,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)

# Path prefixes of the families whose envelope is {"success": false, ...}.
UPPERCASE_FAMILIES = ("/cdn/", "/api/")


def v1_envelope(error):
    """The `/v1` envelope: {"error": {"code": slug, "message": ...}}."""
    return {"error": {"code": error.slug, "message": error.message}}


def cdn_envelope(error):
    """The `/cdn` and `/api/v1` envelope: {"success": false, "error": {"code": CODE, ...}}."""
    return {"success": False, "error": {"code": error.code, "message": error.message}}


def render_v1_error(error):
    """The `/v1` error response."""
    response = jsonify(v1_envelope(error))
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def render_cdn_error(error):
    """The `/cdn` and `/api/v1` error response."""
    response = jsonify(cdn_envelope(error))
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _as_goodeye_error(exc):
    if isinstance(exc, GoodeyeError):
        return exc
    if isinstance(exc, RequestEntityTooLarge):
        return ImageTooLarge()
    if isinstance(exc, WerkzeugMethodNotAllowed):
        return MethodNotAllowed(headers={"Allow": ", ".join(sorted(exc.valid_methods or []))})
    if isinstance(exc, RequestedRangeNotSatisfiable):
        return RangeNotSatisfiable(headers={"Content-Range": f"bytes */{exc.length}"} if exc.length is not None else None)
    if isinstance(exc, HTTPException):
        if exc.code == 404:
            return NotFound("No such endpoint.")
        if exc.code and 400 <= exc.code < 500:
            return InvalidRequest(exc.description or "Bad request.")
    if isinstance(exc, (OperationalError, InterfaceError)):
        log.warning("database unavailable: %s", exc)
        discard_connection()
        return ServiceUnavailable("The database is unavailable; retry shortly.")
    log.exception("unhandled error on %s %s", request.method, request.path)
    return GoodeyeError()


def register_error_handlers(app):
    """Render every exception as the JSON envelope of the family the path belongs to."""

    @app.errorhandler(Exception)
    def _handle(exc):
        error = _as_goodeye_error(exc)
        if isinstance(error, (RateLimited, QuotaExceeded)):
            metrics.count_refusal(error.code)
        if request.path.startswith(UPPERCASE_FAMILIES):
            return render_cdn_error(error)
        return render_v1_error(error)


def bearer_key(allow_x_api_key=False):
    """The API key a request carries, or None when it carries none."""
    # A blank header carries no credential: anonymous, as nginx's fast path takes it too.
    header = (request.headers.get("Authorization") or "").strip()
    if header:
        scheme, _, key = header.partition(" ")
        # A credential in any other shape is a wrong credential, never anonymity.
        return key.strip() if scheme.lower() == "bearer" else header
    if allow_x_api_key:
        return (request.headers.get("X-API-Key") or "").strip() or None
    return None


def from_nginx():
    """Whether nginx sent the request: gunicorn on a unix socket reports no peer address,
    and only nginx can reach that socket."""
    return not request.remote_addr


def client_ip():
    """The client's address: X-Real-IP as nginx sets it (after its real-IP module weighed
    X-Forwarded-For from GOODEYE_TRUSTED_PROXIES), believed only from nginx itself."""
    if from_nginx():
        return request.headers.get("X-Real-IP") or "unknown"
    return request.remote_addr


class AnyPathConverter(PathConverter):
    """Werkzeug's `path`, newlines included: a name with %0A reaches its view and gets the
    operation's own 404 (`IMAGE_NOT_FOUND`) instead of the router's generic one."""

    regex = "[^/](?s:.*?)"


class GoodeyeRequest(Request):
    """Multipart files are read into memory whole anyway (MAX_CONTENT_LENGTH bounds them):
    keep them in memory rather than spooling large ones to a temp file first."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


# JSON bodies are bounded before any parsing: the size from Content-Length (only the
# base64-upload route takes a body as large as an image), then a count of the
# characters that open a container or separate elements (a C-speed upper bound on the
# values json.loads would build: a 34 MB `[{},{},...]` is 11 million dicts, ~900 MB),
# then the nesting depth.
JSON_MAX_BYTES = 64 * 1024
JSON_MAX_ELEMENTS = 10_000
JSON_MAX_DEPTH = 32

_JSON_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "true or false",
    "object": "an object",
    "number": "a number",
    "array": "an array",
    "null": "null",
}


def json_body(types=None, *, max_bytes=JSON_MAX_BYTES):
    """The request's JSON object, bounded in size and shape, each field in `types` of its JSON type; else InvalidRequest.

    `types` maps a field to the JSON types it may have ("string", "integer", "boolean",
    "object", "null"), as the OpenAPI document declares them: a wire string is never
    taken for a number or a boolean. Fields not in `types` are left to the caller.
    """
    if not request.is_json:
        raise InvalidRequest("The body must be a JSON object (Content-Type: application/json).")
    if request.content_length is not None and request.content_length > max_bytes:
        raise InvalidRequest(f"The JSON body is {request.content_length} bytes; the limit here is {max_bytes} bytes.")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise InvalidRequest(f"The JSON body is over {max_bytes} bytes, the limit here.")
    if raw.count(b"{") + raw.count(b"[") + raw.count(b",") > JSON_MAX_ELEMENTS:
        raise InvalidRequest(f"The JSON body has more than {JSON_MAX_ELEMENTS} elements.")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        # Malformed JSON, text that is not UTF-8, a number past Python's digit limit, or
        # nesting deeper than the parser goes: not a body any endpoint takes.
        body = None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object (Content-Type: application/json).")
    _check_json_shape(body)
    for name, allowed in (types or {}).items():
        if name in body and _json_type(body[name]) not in allowed:
            expected = " or ".join(_JSON_TYPE_NAMES[kind] for kind in allowed)
            raise InvalidRequest(f"{name} must be {expected}, not {_JSON_TYPE_NAMES[_json_type(body[name])]}.")
    return body


def _json_type(value):
    """The JSON type name of a parsed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _check_json_shape(value):
    """InvalidRequest unless the parsed value nests at most JSON_MAX_DEPTH deep and its strings are UTF-8."""
    pending = [(value, 1)]  # a loop, not recursion: the depth is what is being checked
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str) and not item.isascii():
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidRequest("The body's strings must be valid Unicode (JSON allows lone surrogates; we do not).") from None
        elif isinstance(item, (dict, list)):
            if depth > JSON_MAX_DEPTH:
                raise InvalidRequest(f"The JSON body nests deeper than {JSON_MAX_DEPTH} levels.")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
