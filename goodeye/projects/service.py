"""Project settings: what `/api/v1/project` and `goodeye admin project update` read and change."""

from goodeye.db import database
from goodeye.errors import InvalidRequest
from goodeye.models import Org, Project, iso


def get_project(project_id):
    """The project (with its org) a key belongs to."""
    return Project.select(Project, Org).join(Org).where(Project.id == project_id).get()


def set_allow_new_live_scopes(project_id, allowed):
    """Whether live URLs may create scopes on first request in this project."""
    Project.update(allow_new_live_scopes=bool(allowed)).where(Project.id == project_id).execute()
    return get_project(project_id)


def update_project(project_id, body):
    """Apply a PATCH body: `{allowNewLiveScopes?}`."""
    unknown = set(body) - {"allowNewLiveScopes"}
    if unknown:
        raise InvalidRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    if "allowNewLiveScopes" not in body:
        return get_project(project_id)
    if not isinstance(body["allowNewLiveScopes"], bool):
        raise InvalidRequest("allowNewLiveScopes must be true or false.")
    with database.atomic():
        return set_allow_new_live_scopes(project_id, body["allowNewLiveScopes"])


def project_record(project):
    """The `/api/v1` JSON shape of a project."""
    return {
        "id": str(project.id),
        "slug": project.slug,
        "org": project.org.slug,
        "allowNewLiveScopes": project.allow_new_live_scopes,
        "createdAt": iso(project.created_at),
    }
