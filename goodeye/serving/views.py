"""`GET`/`HEAD /v1/i/{token}.{ext}`: the stable serving URL."""

from flask import Blueprint

from goodeye.context import current_context
from goodeye.errors import ImageNotFound
from goodeye.http import bearer_key
from goodeye.serving import decide
from goodeye.serving.check import cache_control, find_by_token, find_for_request
from goodeye.serving.respond import blob_response
from goodeye.variants.serving import as_variant, decision, requested_variant, vary_headers

bp = Blueprint("serving", __name__)


@bp.get("/v1/i/<path:name>")
def serve(name):
    # The extension is cosmetic: the token is everything before the first dot.
    ctx = current_context()
    key = bearer_key()
    image = find_for_request(ctx.tokens, name.partition(".")[0], key)
    # Parsed after the lookup, as nginx's fast path does: a missing image is a 404 whatever the query.
    spec = requested_variant(ctx)
    image = as_variant(ctx, image, spec, anonymous=key is None)
    return blob_response(ctx, image, cache_control(ctx.settings, image), extra_headers=vary_headers(spec))


@bp.get("/_goodeye/decide/v1/<token>")
def decide_v1(token):
    """nginx's reusable decision for an anonymous request of /v1/i/{token}."""
    ctx = current_context()
    try:
        image = find_by_token(ctx.tokens, token)
    except ImageNotFound:
        # A missing or expired image never comes back: safe to keep.
        return decide.refused(404, keep=True)
    if image.visibility != "public":
        # Not kept: making it public must take effect on the next request.
        return decide.refused(401, keep=False)
    return decision(ctx, image, lambda now: cache_control(ctx.settings, image, now))
