"""Decisions nginx may reuse: the answers of `/_goodeye/decide/...` (nginx's fast path).

nginx asks these endpoints (through `auth_request`) before serving an
anonymous request for a public URL, and keeps the answer in its cache
(`X-Accel-Expires`) for about a second (nginx counts whole seconds, so a kept
answer can be up to two seconds old), or for an hour when the image has no
expiry and the URL can name other bytes only by a change that renames or
removes the image's link (a token, a filename, a live URL):

- 204: serve the file at `X-Goodeye-Link` under the link dir, with the
  `X-Goodeye-*` headers;
- 401: answer the JSON error of status `X-Goodeye-Status` (401 or 404);
- 403: no decision to reuse; pass the request to the app as usual.

A kept 204 can never outlive what it promised: an image that turns private or
is deleted loses its link at once, any other change of what the decision's
headers say renames the link (goodeye/serving/links.py), and an image that
expires within the window is not kept at all. Signed URLs and aliases keep
theirs a second at most: a rotated key or a moved alias leaves the link as it is.
"""

from datetime import timedelta

from flask import Response

from goodeye.models import utcnow
from goodeye.serving.respond import nginx_headers

# How long nginx keeps a decision, and the most it can be off by.
KEEP_SECONDS = 1
WORST_AGE_SECONDS = 2
# Kept as long as nginx's cache keeps an entry nobody asks for (goodeye/nginx/goodeye.conf.j2).
LASTING_KEEP_SECONDS = 3600


def granted(ctx, image, cache_control_at, *, cache_status=None, scope=None, keep=True, lasting=False, link=None, signed=False):
    """Serve this image's link; keep the decision unless the image expires within the window.

    `cache_control_at(now)` is the Cache-Control the image's URL family gives at that
    time; `keep=False` when the URL may name another image any moment (an alias), or
    when what the decision promises ends within the window (a signature's expiry);
    `lasting` when the URL can name other bytes only through a change of the image's
    link, so that a decision on an image without expiry is kept for an hour; `link` names another link than the image's
    own (a variant's); `signed`: the decision is for one signed URL, served from the
    image's signed link.
    """
    now = utcnow()
    keep = keep and (image.expires_at is None or image.expires_at - now > timedelta(seconds=WORST_AGE_SECONDS + 1))
    later = now + timedelta(seconds=WORST_AGE_SECONDS) if keep else now
    seconds = 0 if not keep else LASTING_KEEP_SECONDS if lasting and image.expires_at is None else KEEP_SECONDS
    # Cache-Control as of the decision's oldest possible use, so max-age never outlives the TTL.
    headers = nginx_headers(image, cache_control_at(later), cache_status=cache_status, scope=scope)
    headers.update({
        "X-Goodeye-Link": link or ctx.links.relative_path(image, signed=signed),
        "X-Goodeye-Type": image.content_type,
        "X-Accel-Expires": str(seconds),
    })
    return Response(status=204, headers=headers)


def refused(status, *, keep):
    """Answer with nginx's JSON error of `status` (401 or 404)."""
    return Response(status=401, headers={"X-Goodeye-Status": str(status), "X-Accel-Expires": str(KEEP_SECONDS if keep else 0)})


def pass_to_app(keep=False):
    """No decision: nginx sends the request to the app."""
    return Response(status=403, headers={"X-Accel-Expires": str(KEEP_SECONDS if keep else 0)})
