"""`/cdn/{org}/{project}/img/{name}` and nginx's decision for it."""

from flask import Blueprint

from goodeye.cdn import service
from goodeye.context import current_context
from goodeye.errors import GoodeyeError
from goodeye.identity.auth import optional_project_id
from goodeye.serving import decide
from goodeye.serving.respond import blob_response
from goodeye.variants.serving import as_variant, decision, requested_variant, vary_headers

bp = Blueprint("cdn", __name__)


@bp.get("/cdn/<org>/<project>/img/<path:name>")
def cdn_image(org, project, name):
    ctx = current_context()
    project_id = optional_project_id()  # public by design, but a key that is sent must be a valid one
    image = service.find_cdn_image(org, project, name)
    spec = requested_variant(ctx)
    image = as_variant(ctx, image, spec, anonymous=project_id is None)
    return blob_response(ctx, image, service.cdn_cache_control(image), extra_headers=vary_headers(spec))


@bp.get("/_goodeye/decide/img/<org>/<project>/<path:name>")
def decide_cdn_image(org, project, name):
    """nginx's reusable decision for /cdn/{org}/{project}/img/{name}."""
    ctx = current_context()
    try:
        image = service.find_cdn_image(org, project, name)
    except GoodeyeError:
        # Not kept: an upload or an alias move may make the name resolve any moment.
        return decide.pass_to_app()
    # An alias moves between images: its decision is never kept. A filename names
    # one image for life (a new image with a freed name has a new link).
    by_filename = not name.startswith("@")
    return decision(ctx, image, lambda now: service.cdn_cache_control(image, now), keep=by_filename, lasting=by_filename)
