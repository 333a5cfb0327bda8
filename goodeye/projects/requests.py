"""`PATCH /api/v1/project` read once at the edge: its JSON body into checked changes."""

from goodeye.errors import InvalidRequest
from goodeye.http import json_body
from goodeye.projects.service import check_live_generations_per_ip_per_hour

# The JSON types of the PATCH body's fields, as goodeye/openapi.yaml declares them.
PROJECT_JSON_TYPES = {"allowNewLiveScopes": ("boolean",), "liveGenerationsPerIpPerHour": ("integer", "null")}


def project_changes():
    """The changes a PATCH body asks for: `allow_new_live_scopes` and `live_generations_per_ip_per_hour` when sent."""
    body = json_body(PROJECT_JSON_TYPES)
    unknown = set(body) - {"allowNewLiveScopes", "liveGenerationsPerIpPerHour"}
    if unknown:
        raise InvalidRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    changes = {}
    if "allowNewLiveScopes" in body:
        if not isinstance(body["allowNewLiveScopes"], bool):
            raise InvalidRequest("allowNewLiveScopes must be true or false.")
        changes["allow_new_live_scopes"] = body["allowNewLiveScopes"]
    if "liveGenerationsPerIpPerHour" in body:
        changes["live_generations_per_ip_per_hour"] = check_live_generations_per_ip_per_hour(body["liveGenerationsPerIpPerHour"])
    return changes
