"""Project settings: what `/api/v1/project` and `goodeye admin project update` read and change."""

from goodeye.db import database, retry_on_deadlock
from goodeye.errors import InvalidRequest
from goodeye.models import Org, Project


def get_project_by_id(project_id):
    """The project (with its org) a key belongs to."""
    return Project.select(Project, Org).join(Org).where(Project.id == project_id).get()


# Bounds of a project's liveGenerationsPerIpPerHour (null: the deployment's GOODEYE_LIVE_GENERATION_LIMIT).
MAX_LIVE_GENERATIONS_PER_IP_PER_HOUR = 1_000_000


def set_allow_new_live_scopes(project_id, allowed):
    """Whether live URLs may create scopes on first request in this project."""
    Project.update(allow_new_live_scopes=bool(allowed)).where(Project.id == project_id).execute()
    return get_project_by_id(project_id)


def check_live_generations_per_ip_per_hour(value):
    """A project's live limit per client address and hour: a whole number in range, or None for the default."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIVE_GENERATIONS_PER_IP_PER_HOUR
    ):
        raise InvalidRequest(
            f"liveGenerationsPerIpPerHour must be a whole number from 1 to {MAX_LIVE_GENERATIONS_PER_IP_PER_HOUR}, "
            "or null for the deployment's default."
        )
    return value


def set_live_generations_per_ip_per_hour(project_id, per_hour):
    """A project's own live-URL generations per client address and hour (None: the deployment's)."""
    Project.update(live_generations_per_ip_per_hour=check_live_generations_per_ip_per_hour(per_hour)).where(
        Project.id == project_id
    ).execute()
    return get_project_by_id(project_id)


@retry_on_deadlock
def update_project(project_id, changes):
    """Apply checked changes (`allow_new_live_scopes`, `live_generations_per_ip_per_hour`) in one transaction."""
    with database.atomic():
        if "allow_new_live_scopes" in changes:
            set_allow_new_live_scopes(project_id, changes["allow_new_live_scopes"])
        if "live_generations_per_ip_per_hour" in changes:
            set_live_generations_per_ip_per_hour(project_id, changes["live_generations_per_ip_per_hour"])
        return get_project_by_id(project_id)
