"""`PATCH /api/v1/project` read once at the edge: its JSON body into checked changes."""

from goodeye.http import json_body
from goodeye.parsing import boolean_field, refuse_unknown_fields
from goodeye.projects.service import check_live_generations_per_ip_per_hour

# The JSON types of the PATCH body's fields, as goodeye/openapi.yaml declares them.
PROJECT_JSON_TYPES = {"allowNewLiveScopes": ("boolean",), "liveGenerationsPerIpPerHour": ("integer", "null")}


def project_changes():
    """The changes a PATCH body asks for: `allow_new_live_scopes` and `live_generations_per_ip_per_hour` when sent."""
    body = json_body(PROJECT_JSON_TYPES)
    refuse_unknown_fields(body, {"allowNewLiveScopes", "liveGenerationsPerIpPerHour"})
    changes = {}
    if "allowNewLiveScopes" in body:
        changes["allow_new_live_scopes"] = boolean_field(body["allowNewLiveScopes"], "allowNewLiveScopes")
    if "liveGenerationsPerIpPerHour" in body:
        changes["live_generations_per_ip_per_hour"] = check_live_generations_per_ip_per_hour(body["liveGenerationsPerIpPerHour"])
    return changes
