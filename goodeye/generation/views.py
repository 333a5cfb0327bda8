"""The `/v1/image-generators` API: thin over goodeye.generation.service."""

from flask import Blueprint, jsonify

from goodeye.context import current_context
from goodeye.generation import service
from goodeye.http import client_ip, json_body
from goodeye.identity.auth import optional_project_id

bp = Blueprint("generation", __name__)

# The JSON types of the body's fields, as goodeye/openapi.yaml declares them.
GENERATE_JSON_TYPES = {
    "prompt": ("string",),
    "n": ("integer",),
    "aspect_ratio": ("string",),
    "seed": ("integer", "null"),
    "auto_enhance": ("boolean",),
    "template": ("string",),
    "visibility": ("string",),
    "ttl_seconds": ("integer", "null"),
}


@bp.get("/v1/image-generators")
def list_generators():
    optional_project_id()  # anyone may list, but a wrong key is refused, never anonymous
    return jsonify({"data": current_context().generators.describe()})


@bp.post("/v1/image-generators/<generator_id>/generate")
def generate(generator_id):
    ctx = current_context()
    project_id = optional_project_id()
    ctx.generators.get(generator_id)  # an unknown generator is a 404 whatever the body
    body = json_body(GENERATE_JSON_TYPES)
    params = service.parse_request(ctx, generator_id, body)
    hosting = service.hosting_from(body, anonymous=project_id is None)
    ip = client_ip()
    if project_id is None:
        service.take_anonymous_generation(ctx, ip)
        result = service.generate_and_host(
            ctx,
            **params,
            project_id=service.anonymous_project_id(),
            visibility="public",
            ttl_seconds=ctx.settings.anonymous_ttl_seconds,
            client_ip=ip,
        )
    else:
        result = service.generate_and_host(ctx, **params, **hosting, project_id=project_id, client_ip=ip)
    response = jsonify(service.generation_response(ctx.settings, result))
    response.status_code = 201
    return response
