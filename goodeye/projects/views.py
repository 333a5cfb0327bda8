"""`GET`/`PATCH /api/v1/project`: the settings of the project the key belongs to; `GET /v1/usage`."""

from flask import Blueprint, jsonify

from goodeye.identity.auth import required_project_id
from goodeye.projects import records, requests, service

bp = Blueprint("projects", __name__)


@bp.get("/api/v1/project")
def get_project():
    project_id = required_project_id(allow_x_api_key=True)
    return jsonify({"success": True, "data": records.project_record(service.get_project_by_id(project_id))})


@bp.patch("/api/v1/project")
def update_project():
    project_id = required_project_id(allow_x_api_key=True)
    project = service.update_project(project_id, requests.project_changes())
    return jsonify({"success": True, "data": records.project_record(project)})


@bp.get("/v1/usage")
def usage():
    return jsonify(records.usage_record(service.get_project_by_id(required_project_id())))
