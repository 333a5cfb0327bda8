"""HTTP plumbing shared by every API family: error envelopes, credentials, client IP, JSON bodies."""

import io
import logging

from flask import Request, jsonify, request
from peewee import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed as WerkzeugMethodNotAllowed, RequestedRangeNotSatisfiable, RequestEntityTooLarge
from werkzeug.routing import PathConverter

from goodeye.db import discard_connection
from goodeye.errors import (
    GoodeyeError,
    ImageTooLarge,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RangeNotSatisfiable,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)

# Path prefixes of the families whose envelope is {"success": false, ...}.
UPPERCASE_FAMILIES = ("/cdn/", "/api/")


def render_v1_error(error):
    """The `/v1` envelope: {"error": {"code": slug, "message": ...}}."""
    response = jsonify({"error": {"code": error.slug, "message": error.message}})
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def render_cdn_error(error):
    """The `/cdn` and `/api/v1` envelope: {"success": false, "error": {"code": CODE, ...}}."""
    response = jsonify({"success": False, "error": {"code": error.code, "message": error.message}})
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


def client_ip():
    """The client's address: X-Real-IP as nginx sets it (after its real-IP module weighed
    X-Forwarded-For from GOODEYE_TRUSTED_PROXIES), believed only from nginx itself."""
    peer = request.remote_addr or ""
    # gunicorn on a unix socket reports no peer address: only nginx can reach it.
    if not peer:
        return request.headers.get("X-Real-IP") or "unknown"
    return peer


class AnyPathConverter(PathConverter):
    """Werkzeug's `path`, newlines included: a name with %0A reaches its view and gets the
    operation's own 404 (`IMAGE_NOT_FOUND`) instead of the router's generic one."""

    regex = "[^/](?s:.*?)"


class GoodeyeRequest(Request):
    """Multipart files are read into memory whole anyway (MAX_CONTENT_LENGTH bounds them):
    keep them in memory rather than spooling large ones to a temp file first."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def json_body():
    """The request's JSON object, else InvalidRequest."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None  # nested deeper than the parser goes: not a body any endpoint takes
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object (Content-Type: application/json).")
    if not _is_unicode_text(body):
        raise InvalidRequest("The body's strings must be valid Unicode (JSON allows lone surrogates; we do not).")
    return body


def _is_unicode_text(value):
    """Whether every string in a parsed JSON value encodes as UTF-8 (no lone surrogates)."""
    pending = [value]  # a loop, not recursion: a body may nest as deep as the parser allows
    while pending:
        item = pending.pop()
        if isinstance(item, str) and not item.isascii():
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True
