"""`GET`/`HEAD /v1/i/{token}.{ext}`: the stable serving URL, signed or not."""

import time

from flask import Blueprint, request

from goodeye.context import current_context
from goodeye.errors import GoodeyeError, ImageNotFound
from goodeye.http import bearer_key
from goodeye.models import utcnow
from goodeye.serving import decide, signing
from goodeye.serving.check import cache_control, find_by_token, find_for_request, find_signed
from goodeye.serving.respond import blob_response
from goodeye.variants.serving import as_variant, decision, requested_variant, vary_headers

bp = Blueprint("serving", __name__)


@bp.get("/v1/i/<path:name>")
def serve(name):
    # The extension is cosmetic: the token is everything before the first dot.
    ctx = current_context()
    token = name.partition(".")[0]
    if signing.is_signed(request.args):
        # A signed URL is the credential: it decides, whatever the visibility or any key sent along.
        query = signing.parse_signed_query(request.args)
        image = find_signed(ctx.tokens, token, query)
        spec = requested_variant(ctx)
        # Not counted against the viewer's address: the key holder who signed the URL chose its
        # one variant (the signature covers w, h, fit and fm), as if asking with the key, and the
        # console's private thumbnails would otherwise spend the owner's anonymous renders.
        image = as_variant(ctx, image, spec, anonymous=False)
        cache = signing.signed_cache_control(image, query.expires, utcnow())
        return blob_response(ctx, image, cache, extra_headers=vary_headers(spec))
    key = bearer_key()
    image = find_for_request(ctx.tokens, token, key)
    # Parsed after the lookup, as nginx's fast path does: a missing image is a 404 whatever the query.
    spec = requested_variant(ctx)
    image = as_variant(ctx, image, spec, anonymous=key is None)
    return blob_response(ctx, image, cache_control(ctx.settings, image), extra_headers=vary_headers(spec))


@bp.get("/_goodeye/decide/v1/<token>")
def decide_v1(token):
    """nginx's reusable decision for an anonymous request of /v1/i/{token} (with its query)."""
    ctx = current_context()
    if signing.is_signed(request.args):
        return _decide_signed(ctx, token)
    try:
        image = find_by_token(ctx.tokens, token)
    except ImageNotFound:
        # A missing or expired image never comes back: safe to keep.
        return decide.refused(404, keep=True)
    if image.visibility != "public":
        # Not kept: making it public must take effect on the next request.
        return decide.refused(401, keep=False)
    return decision(ctx, image, lambda now: cache_control(ctx.settings, image, now), lasting=True)


def _decide_signed(ctx, token):
    """A signed URL of an original that holds is served from the image's signed link; nginx keys it on the whole URL.

    A signed variant URL goes to the app (variant links belong to public images), as
    does every signed URL on S3 (a node's copies are of public images only).
    """
    try:
        query = signing.parse_signed_query(request.args)
        image = find_signed(ctx.tokens, token, query)
    except GoodeyeError:
        # Refusals are not kept (the app answers each with its own slug).
        return decide.pass_to_app()
    if query.variant or not ctx.links.links_signed_urls:
        return decide.pass_to_app()
    keep = query.expires - time.time() > decide.WORST_AGE_SECONDS + 1
    return decide.granted(
        ctx, image, lambda now: signing.signed_cache_control(image, query.expires, now), keep=keep, signed=True
    )
