"""Answer with an image's bytes: an X-Accel-Redirect for nginx, or a stream from Flask."""

from flask import Response, request
from werkzeug.http import http_date, is_resource_modified, parse_date, parse_etags, quote_etag
from werkzeug.wsgi import wrap_file

from goodeye.errors import ImageNotFound, PreconditionFailed, RangeNotSatisfiable


def validators(image):
    """(ETag, Last-Modified) of an image, the same on every path that serves it.

    The ETag is its bytes' SHA-256, so equal bytes share it whoever stored them;
    Last-Modified is the image's own time, never its shared blob's, so no one
    learns when another tenant stored the same bytes.
    """
    return quote_etag(image.sha256), http_date(image.updated_at)


def nginx_headers(image, cache_control, *, cache_status=None, scope=None):
    """The image's headers as X-Goodeye-*, which nginx reads and emits again (goodeye/nginx/image.j2).

    nginx drops the app's headers on an internal redirect, but for a few such as
    Cache-Control, which it would keep even on an error page it answers instead (a
    404 a CDN could cache); under these names it keeps none of them.
    """
    etag, last_modified = validators(image)
    return {
        "X-Goodeye-Image": image.id,
        "X-Goodeye-Cache-Status": cache_status or "",
        "X-Goodeye-Scope": scope or "",
        "X-Goodeye-Cache-Control": cache_control,
        "X-Goodeye-ETag": etag,
        "X-Goodeye-Last-Modified": last_modified,
    }


def _check_preconditions(image):
    """PreconditionFailed unless the image meets If-Match / If-Unmodified-Since; whether the request had either.

    werkzeug's conditional handling takes a failed If-Match for "not modified" (a 304)
    and ignores If-Unmodified-Since, and nginx would test both against the shared blob
    file; so they are decided here, against the image's own ETag and time.
    """
    if_match = request.headers.get("If-Match")
    if_unmodified_since = request.headers.get("If-Unmodified-Since")
    if if_match is not None:
        etags = parse_etags(if_match)
        if not (etags.star_tag or etags.is_strong(image.sha256)):
            raise PreconditionFailed()
    elif if_unmodified_since is not None:
        since = parse_date(if_unmodified_since)
        # An unparsable date is ignored, as the HTTP rules say; HTTP dates have whole seconds.
        if since is not None and image.updated_at.replace(microsecond=0) > since.replace(tzinfo=None):
            raise PreconditionFailed()
    return if_match is not None or if_unmodified_since is not None


def _refuse_unsatisfiable_range(size):
    """RangeNotSatisfiable when no range asked for starts inside the image.

    nginx would answer it too, but by then its image location has added the image's
    headers, which its 416 error page keeps; werkzeug's own check takes one range only.
    """
    ranges = request.range
    if ranges is None or request.headers.get("If-Range"):
        return
    if all(start >= size if start >= 0 else size == 0 for start, _stop in ranges.ranges):
        raise RangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})


def blob_response(ctx, image, cache_control, *, cache_status=None, scope=None, extra_headers=None, stream=False):
    """The response that delivers an image's bytes with the contract's headers.

    nginx streams them (X-Accel-Redirect) unless GOODEYE_ACCEL=off or `stream`
    asks Flask to: headers that nginx would drop must reach the client.
    """
    etag, last_modified = validators(image)
    headers = {
        "Cache-Control": cache_control,
        "X-Content-Type-Options": "nosniff",
        "X-Image-Id": image.id,
        "ETag": etag,
        "Last-Modified": last_modified,
    }
    if cache_status:
        headers["X-Cache-Status"] = cache_status
    if scope:
        headers["X-Scope"] = scope
    headers.update(extra_headers or {})
    # nginx cannot be kept from testing a met precondition again against the blob file:
    # such (rare) requests are streamed by the app.
    stream = _check_preconditions(image) or stream
    if ctx.settings.accel == "nginx" and not stream:
        # The app answers conditional requests itself: nginx compares If-None-Match
        # only with an ETag of its own making (from the blob file), never with ours.
        if not is_resource_modified(request.environ, etag=etag, last_modified=image.updated_at):
            return Response(status=304, headers=headers)
        _refuse_unsatisfiable_range(image.size_bytes)
        headers = nginx_headers(image, cache_control, cache_status=cache_status, scope=scope)
        headers["X-Accel-Redirect"] = f"/_goodeye/{ctx.storage.accel_target(image.sha256)}"
        return Response(b"", status=200, headers=headers, content_type=image.content_type)
    try:
        stream = ctx.storage.open(image.sha256)
    except FileNotFoundError:
        raise ImageNotFound() from None
    response = Response(wrap_file(request.environ, stream), mimetype=image.content_type, direct_passthrough=True)
    response.content_length = image.size_bytes
    response.headers.update(headers)
    # The preconditions are decided above; werkzeug would read a met If-Match as "not modified".
    environ = {key: value for key, value in request.environ.items() if key not in ("HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE")}
    return response.make_conditional(environ, accept_ranges=True, complete_length=image.size_bytes)
