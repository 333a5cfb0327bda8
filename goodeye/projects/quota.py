"""Per-project quotas: the usage counters on the project row and the one UPDATE that takes room.

Every image insert calls `take_usage` and every image row delete calls
`release_usage`, in the same transaction as the row change. `take_usage` is a
conditional `UPDATE project SET ... WHERE id = ? AND (max IS NULL OR used + n <= max)`
whose row count decides: concurrent uploads on any number of app instances queue
on the project row, and exactly as many as fit get in.

Decisions where the contract is silent:
- Storage counts each image's `size_bytes`, even when two images share one blob:
  the quota is what the project asked to keep, not what deduplication saved.
- An expired image counts until it is gone (deleted, or purged by the sweeper
  after GOODEYE_EXPIRED_GRACE_SECONDS): its bytes are still kept until then.
- A quota set below the current usage is allowed: nothing is removed, new images
  are refused until the usage is below it again.
"""

from peewee import fn

from goodeye.db import database, for_update, retry_on_deadlock
from goodeye.errors import QuotaExceeded
from goodeye.models import Image, Org, Project

# A BIGINT column holds at most this.
MAX_QUOTA = 2**63 - 1


def _refusal(project_id, images, storage_bytes):
    """A QuotaExceeded that says which quota the request would pass."""
    row = Project.get_or_none(Project.id == project_id)
    if row is not None and images > 0 and row.max_images is not None and row.image_count + images > row.max_images:
        return QuotaExceeded(f"This project may keep at most {row.max_images} images; it keeps {row.image_count}.")
    if row is not None and row.max_storage_bytes is not None:
        return QuotaExceeded(
            f"This project may keep at most {row.max_storage_bytes} bytes; it keeps {row.storage_bytes} "
            f"and this needs {storage_bytes} more."
        )
    return QuotaExceeded()


def take_usage(project_id, *, images=1, storage_bytes):
    """Count new images and bytes against the project's quotas; QuotaExceeded when they do not fit.

    Call inside the transaction that inserts (or replaces the bytes of) the image,
    before the insert: the project row stays locked until that transaction ends.
    A replacement passes images=0 and the change in bytes (negative when it shrinks).
    """
    if images == 0 and storage_bytes == 0:
        return  # nothing changes (and MySQL would report no row changed)
    query = Project.update(
        image_count=Project.image_count + images, storage_bytes=Project.storage_bytes + storage_bytes
    ).where(Project.id == project_id)
    if images > 0:
        query = query.where(Project.max_images.is_null() | (Project.image_count + images <= Project.max_images))
    if storage_bytes > 0:
        query = query.where(
            Project.max_storage_bytes.is_null() | (Project.storage_bytes + storage_bytes <= Project.max_storage_bytes)
        )
    if query.execute() != 1:
        raise _refusal(project_id, images, storage_bytes)


def release_usage(project_id, storage_bytes, images=1):
    """Give back what deleted image rows held; call in the transaction that deletes the rows."""
    if images == 0 and storage_bytes == 0:
        return
    Project.update(
        image_count=Project.image_count - images, storage_bytes=Project.storage_bytes - storage_bytes
    ).where(Project.id == project_id).execute()


def check_room(project_id, *, images=1, storage_bytes=0):
    """QuotaExceeded when the project has no room for this much now (a read: take_usage decides)."""
    row = Project.get_or_none(Project.id == project_id)
    if row is None:
        return
    if images > 0 and row.max_images is not None and row.image_count + images > row.max_images:
        raise _refusal(project_id, images, storage_bytes)
    if storage_bytes > 0 and row.max_storage_bytes is not None and row.storage_bytes + storage_bytes > row.max_storage_bytes:
        raise _refusal(project_id, images, storage_bytes)


def set_quotas(project_id, **quotas):
    """Set `max_images` and/or `max_storage_bytes` (None: unlimited); only the ones given change."""
    allowed = {"max_images", "max_storage_bytes"}
    if set(quotas) - allowed:
        raise ValueError(f"unknown quota(s): {', '.join(sorted(set(quotas) - allowed))}")
    if quotas:
        Project.update(**quotas).where(Project.id == project_id).execute()


def usage_drift():
    """Every project whose usage counters differ from its image rows: {project, image_count, images, storage_bytes, bytes}."""
    held = {
        project_id: (images, int(size or 0))
        for project_id, images, size in Image.select(Image.project, fn.COUNT(Image.pk), fn.SUM(Image.size_bytes))
        .group_by(Image.project)
        .tuples()
    }
    drift = []
    rows = Project.select(Project.id, Project.slug, Org.slug, Project.image_count, Project.storage_bytes).join(Org)
    for project_id, slug, org_slug, image_count, storage_bytes in rows.order_by(Project.id).tuples():
        images, size = held.get(project_id, (0, 0))
        if (image_count, storage_bytes) != (images, size):
            drift.append({"project": f"{org_slug}/{slug}", "project_id": project_id, "image_count": image_count,
                          "images": images, "storage_bytes": storage_bytes, "bytes": size})
    return drift


@retry_on_deadlock
def recount_usage(project_id):
    """Set a project's usage counters to what its image rows hold, under the project row's lock."""
    with database.atomic():
        # The lock comes before the count: an insert or delete in flight either
        # committed first (and is counted) or moves the counters after this commit.
        list(for_update(Project.select(Project.id).where(Project.id == project_id)))
        images, size = Image.select(fn.COUNT(Image.pk), fn.SUM(Image.size_bytes)).where(Image.project == project_id).tuples()[0]
        Project.update(image_count=images, storage_bytes=int(size or 0)).where(Project.id == project_id).execute()
