"""`goodeye admin blocklist enforce`: remove every stored image the blocklist matches."""

from goodeye.db import database
from goodeye.images.service import remove_images
from goodeye.models import BlocklistEntry, Image
from goodeye.similar.index import band_union


def matching_images():
    """Every stored image of any project (expired ones included) that an entry matches."""
    pks = set()
    for entry in BlocklistEntry.select():
        close = band_union("image", entry.phash, entry.max_distance, "pk", f"{{distance}} <= {entry.max_distance}")
        pks.update(pk for pk, _distance in database.execute_sql(close).fetchall())
    ordered = sorted(pks)
    images = []
    for start in range(0, len(ordered), 500):
        images.extend(Image.select().where(Image.pk.in_(ordered[start : start + 500])))
    return images


def enforce(ctx, dry_run=False):
    """Delete every stored image that an entry matches (records, links, blobs); the count matched and deleted."""
    matched = matching_images()
    deleted = 0
    if not dry_run:
        for start in range(0, len(matched), 100):
            deleted += remove_images(ctx, matched[start : start + 100])
    return {"matched": len(matched), "deleted": deleted, "dry_run": dry_run}
