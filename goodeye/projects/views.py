"""`GET`/`PATCH /api/v1/project`: the settings of the project the key belongs to; `GET /v1/usage`."""

from flask import Blueprint, jsonify

from goodeye.http import json_body
from goodeye.identity.auth import required_project_id
from goodeye.projects import quota, service

bp = Blueprint("projects", __name__)

# The JSON types of the PATCH body's fields, as goodeye/openapi.yaml declares them.
PROJECT_JSON_TYPES = {"allowNewLiveScopes": ("boolean",), "liveGenerationsPerIpPerHour": ("integer", "null")}


@bp.get("/api/v1/project")
def get_project():
    project_id = required_project_id(allow_x_api_key=True)
    return jsonify({"success": True, "data": service.project_record(service.get_project_by_id(project_id))})


@bp.patch("/api/v1/project")
def update_project():
    project_id = required_project_id(allow_x_api_key=True)
    project = service.update_project(project_id, json_body(PROJECT_JSON_TYPES))
    return jsonify({"success": True, "data": service.project_record(project)})


@bp.get("/v1/usage")
def usage():
    return jsonify(quota.project_usage(required_project_id()))
