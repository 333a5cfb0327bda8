"""The `/v1/image-generators` API: requests read by goodeye.generation.requests, work done by goodeye.generation.service."""

from flask import Blueprint, jsonify

from goodeye.context import current_context
from goodeye.generation import records, requests, service
from goodeye.http import client_ip, json_body
from goodeye.identity.auth import optional_project_id

bp = Blueprint("generation", __name__)


@bp.get("/v1/image-generators")
def list_generators():
    optional_project_id()  # anyone may list, but a wrong key is refused, never anonymous
    return jsonify({"data": current_context().generators.describe()})


@bp.post("/v1/image-generators/<generator_id>/generate")
def generate(generator_id):
    ctx = current_context()
    project_id = optional_project_id()
    generator = ctx.generators.get(generator_id)  # an unknown generator is a 404 whatever the body
    body = json_body(requests.GENERATE_JSON_TYPES)
    generation = requests.body_request(generator, body)
    placement = requests.body_hosting(body, anonymous=project_id is None)
    ip = client_ip()
    if project_id is None:
        service.take_anonymous_generation(ctx, ip)
        project_id = service.anonymous_project_id()
        placement = requests.hosting("public", ctx.settings.anonymous_ttl_seconds)
    result = service.generate_and_host(ctx, generation, project_id=project_id, placement=placement, client_ip=ip)
    response = jsonify(records.generation_response(ctx.settings, result))
    response.status_code = 201
    return response
