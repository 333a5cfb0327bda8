"""The console, the API docs and /openapi.json when Flask serves them (GOODEYE_ACCEL=off).

Behind nginx (GOODEYE_ACCEL=nginx) nginx serves the static files itself with the same
headers; /openapi.json always comes from here.
"""

import os

from flask import Blueprint, Response, request

from goodeye.console import (
    FAVICON_CACHE,
    IMMUTABLE,
    MEDIA_TYPES,
    PAGES,
    REVALIDATE,
    SECURITY_HEADERS,
    STATIC_DIR,
    asset_version,
    content_type,
    openapi_json,
    render_page,
)
from goodeye.errors import NotFound

bp = Blueprint("console", __name__)


def _respond(body, filename, cache_control):
    response = Response(body, content_type=content_type(filename))
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = cache_control
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/")
def console_page():
    """The console."""
    return _respond(render_page("index.html"), "index.html", REVALIDATE)


@bp.get("/docs")
def docs_page():
    """The API docs, rendered in the browser from /openapi.json."""
    return _respond(render_page("docs.html"), "docs.html", REVALIDATE)


@bp.get("/console/<version>/<name>")
def asset(version, name):
    """A versioned static asset: only the current version exists, and only files of a known type."""
    path = os.path.join(STATIC_DIR, name)
    known_type = name.rpartition(".")[2] in MEDIA_TYPES  # a stray file (.DS_Store) is no asset
    if version != asset_version() or name in PAGES or not known_type or not os.path.isfile(path):
        raise NotFound("No such endpoint.")
    with open(path, "rb") as handle:
        return _respond(handle.read(), name, IMMUTABLE)


@bp.get("/favicon.ico")
def favicon():
    """The site icon, at the path browsers ask for it."""
    with open(os.path.join(STATIC_DIR, "favicon.ico"), "rb") as handle:
        return _respond(handle.read(), "favicon.ico", FAVICON_CACHE)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI document (goodeye/openapi.yaml) as JSON."""
    return _respond(openapi_json(), "openapi.json", REVALIDATE)
