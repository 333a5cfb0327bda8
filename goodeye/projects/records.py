"""The JSON of projects: the `/api/v1/project` record, `GET /v1/usage`, and the admin CLI's project record."""

from goodeye.models import iso


def project_record(project):
    """The `/api/v1` JSON shape of a project."""
    return {
        "id": str(project.id),
        "slug": project.slug,
        "org": project.org.slug,
        "allowNewLiveScopes": project.allow_new_live_scopes,
        "liveGenerationsPerIpPerHour": project.live_generations_per_ip_per_hour,
        "createdAt": iso(project.created_at),
    }


def usage_record(project):
    """`GET /v1/usage`: what the project keeps and its quotas (null: unlimited)."""
    return {
        "images": project.image_count,
        "storage_bytes": project.storage_bytes,
        "max_images": project.max_images,
        "max_storage_bytes": project.max_storage_bytes,
    }


def admin_project_record(project):
    """The JSON shape of a project in `goodeye admin project` (snake_case, with its usage and quotas)."""
    return {
        "id": project.id,
        "org": project.org.slug,
        "slug": project.slug,
        "allow_new_live_scopes": project.allow_new_live_scopes,
        "live_generations_per_ip_per_hour": project.live_generations_per_ip_per_hour,
        **usage_record(project),
        "created_at": iso(project.created_at),
    }
