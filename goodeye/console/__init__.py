"""The console (a web page for image owners) and the API docs: static files and their headers.

nginx serves these files straight from `static/` (nginx/goodeye.conf.j2); with
GOODEYE_ACCEL=off the blueprint in `views.py` serves the same bytes with the same
headers. Both take the asset version, the headers and the OpenAPI JSON from here.
"""

import functools
import hashlib
import json
import os

import yaml

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATIC_DIR = os.path.join(PACKAGE_DIR, "console", "static")
OPENAPI_YAML = os.path.join(PACKAGE_DIR, "openapi.yaml")

# Pages name their assets under /console/{VERSION_PLACEHOLDER}/; whoever serves the
# page puts the asset version there, so an asset's URL changes whenever any asset does.
VERSION_PLACEHOLDER = "__ASSET_VERSION__"
# The pages served at fixed URLs (/ and /docs), never cached without revalidation.
PAGES = ("index.html", "docs.html")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
# The media types of the static files, by extension; text ones are sent as UTF-8.
MEDIA_TYPES = {
    "html": "text/html", "css": "text/css", "js": "text/javascript", "ico": "image/x-icon", "json": "application/json",
}
TEXT_MEDIA_TYPES = ("text/html", "text/css", "text/javascript")
# Versioned assets never change under their URL; pages and the OpenAPI JSON revalidate.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
FAVICON_CACHE = "public, max-age=86400"


@functools.lru_cache(maxsize=None)
def asset_version():
    """A short hash of every static file: the path segment that versions asset URLs."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(STATIC_DIR)):
        digest.update(name.encode() + b"\0")
        with open(os.path.join(STATIC_DIR, name), "rb") as handle:
            digest.update(handle.read() + b"\0")
    return digest.hexdigest()[:12]


def content_type(filename):
    """The Content-Type a static file is served with."""
    media_type = MEDIA_TYPES[filename.rsplit(".", 1)[-1]]
    return f"{media_type}; charset=utf-8" if media_type in TEXT_MEDIA_TYPES else media_type


def render_page(filename):
    """A page's bytes with the asset version filled in."""
    with open(os.path.join(STATIC_DIR, filename), encoding="utf-8") as handle:
        return handle.read().replace(VERSION_PLACEHOLDER, asset_version()).encode()


@functools.lru_cache(maxsize=None)
def openapi_json():
    """goodeye/openapi.yaml as JSON bytes, made once per process."""
    with open(OPENAPI_YAML, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    return json.dumps(document, indent=1, ensure_ascii=False).encode()
