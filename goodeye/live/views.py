"""`/cdn/{org}/{project}/live/{scope}`, `/api/v1/live` and `/api/v1/live/scopes`."""

from flask import Blueprint, jsonify, request

from goodeye import metrics
from goodeye.cdn import service as cdn
from goodeye.context import current_context
from goodeye.errors import GoodeyeError
from goodeye.http import client_ip, json_body
from goodeye.identity.auth import optional_project_id, required_project_id
from goodeye.live import records, requests, scopes, service
from goodeye.serving import decide
from goodeye.serving.respond import blob_response
from goodeye.variants.serving import as_variant, decision, requested_variant, vary_headers

bp = Blueprint("live", __name__)

@bp.get("/cdn/<org>/<project>/live/<scope>")
def cdn_live(org, project, scope):
    ctx = current_context()
    caller = optional_project_id()  # as for /cdn images: a wrong key is refused, never taken as anonymity
    # Before anything is generated: a bad variant parameter leaves nothing behind.
    spec = requested_variant(ctx)
    service.check_scope_slug(scope)
    live = requests.live_query(request.args)
    project_id, allow_new_scopes = cdn.resolve_project(org, project)
    image = service.find_cached(live.cache_key(project_id, scope))
    if image is None:
        outcome = service.serve_live(ctx, project_id, allow_new_scopes, scope, live, client_ip())
        metrics.count_live(outcome.cache_status)
        if outcome.cache_status != "HIT":
            return _miss_response(ctx, outcome, scope, spec)
        image = outcome.image
    else:
        metrics.count_live("HIT")
    image = as_variant(ctx, image, spec, anonymous=caller is None)
    return blob_response(
        ctx, image, cdn.cdn_cache_control(image), cache_status="HIT", scope=scope, extra_headers=vary_headers(spec)
    )


@bp.get("/_goodeye/decide/live/<org>/<project>/<scope>")
def decide_cdn_live(org, project, scope):
    """nginx's reusable decision for a live URL: HITs are served by nginx, everything else by the app."""
    ctx = current_context()
    try:
        service.check_scope_slug(scope)
        live = requests.live_query(request.args)
        project_id, _allow_new_scopes = cdn.resolve_project(org, project)
        image = service.find_cached(live.cache_key(project_id, scope))
    except GoodeyeError:
        return decide.pass_to_app()
    if image is None:
        return decide.pass_to_app()
    # Lasting: a live URL names other bytes only after a regeneration, a deleted image or scope,
    # each of which renames or removes the link this decision names.
    return decision(ctx, image, lambda now: cdn.cdn_cache_control(image, now), cache_status="HIT", scope=scope, lasting=True)


def _miss_response(ctx, outcome, scope, spec):
    # Flask streams a MISS itself: X-Generation-Id and X-RateLimit-* would not
    # survive an X-Accel-Redirect (docs/architecture.md), and MISSes are rare by design.
    extra = {"X-Generation-Id": outcome.generation_id, **outcome.limit_state.headers(), **vary_headers(spec)}
    # The live limit counted this request when it generated the image; refusing its
    # variant now would answer 429 for an image already made (and paid for).
    image = as_variant(ctx, outcome.image, spec, anonymous=False)
    return blob_response(
        ctx, image, cdn.cdn_cache_control(image), cache_status="MISS", scope=scope, extra_headers=extra, stream=True
    )


@bp.get("/api/v1/live")
def live_prompt():
    project_id = required_project_id(allow_x_api_key=True)
    ctx = current_context()
    prompt = request.args.get("prompt")
    row, status = service.prompt_image(ctx, project_id, requests.check_prompt(prompt), client_ip())
    response = jsonify(records.success(records.prompt_record(ctx.settings, prompt, row)))
    response.headers["X-Cache-Status"] = status
    if status == "HIT":
        response.headers["X-Cache-Hit-Count"] = str(row.hit_count)
    return response


@bp.post("/api/v1/live/scopes")
def create_scope():
    project_id = required_project_id(allow_x_api_key=True)
    slug, fields = requests.new_scope(json_body(requests.SCOPE_JSON_TYPES))
    return jsonify(records.success(records.scope_record(scopes.create_scope(project_id, slug, fields)))), 201


@bp.get("/api/v1/live/scopes")
def list_scopes():
    project_id = required_project_id(allow_x_api_key=True)
    page = requests.scope_page(request.args)
    rows, total = scopes.list_scopes(project_id, page)
    return jsonify(records.scope_page(rows, page, total))


@bp.get("/api/v1/live/scopes/<slug>")
def get_scope(slug):
    project_id = required_project_id(allow_x_api_key=True)
    return jsonify(records.success(records.scope_record(scopes.get_scope(project_id, slug))))


@bp.put("/api/v1/live/scopes/<slug>")
def update_scope(slug):
    project_id = required_project_id(allow_x_api_key=True)
    fields = requests.scope_changes(json_body(requests.SCOPE_JSON_TYPES))
    return jsonify(records.success(records.scope_record(scopes.update_scope(project_id, slug, fields))))


@bp.delete("/api/v1/live/scopes/<slug>")
def delete_scope(slug):
    project_id = required_project_id(allow_x_api_key=True)
    deleted, kept = scopes.delete_scope(current_context(), project_id, slug)
    return jsonify(records.success(records.deleted_scope(slug, deleted, kept)))


@bp.post("/api/v1/live/scopes/<slug>/regenerate")
def regenerate_scope(slug):
    project_id = required_project_id(allow_x_api_key=True)
    body = json_body(requests.REGENERATE_JSON_TYPES) if request.content_length else {}
    image_ids = scopes.regenerate(current_context(), project_id, slug, requests.regenerate_target(body))
    return jsonify(records.success(records.regenerated(image_ids)))
