"""Reclaim what is no longer needed: expired records, unreferenced and orphaned blobs."""

import logging
import time
from datetime import timedelta

from goodeye.images.blobs import reclaim_if_unreferenced
from goodeye.images.service import remove_images
from goodeye.models import Blob, Image, utcnow

log = logging.getLogger(__name__)


def sweep(ctx, now=None):
    """One pass; returns counts of what was purged and reclaimed."""
    now = now or utcnow()
    settings = ctx.settings
    cutoff = now - timedelta(seconds=settings.expired_grace_seconds)
    expired = list(
        Image.select(Image.pk, Image.token, Image.sha256, Image.project, Image.size_bytes)
        .where(Image.expires_at < cutoff)
        .limit(1000)
    )
    purged = 0
    for start in range(0, len(expired), 100):
        # An image deleted or given a new TTL since the select is not purged (nor released) again.
        purged += remove_images(ctx, expired[start : start + 100], Image.expires_at < cutoff)

    # Blobs whose bytes are stored but whose row was never committed (a crash
    # between the write and the commit), once they are older than the grace.
    orphans = 0
    oldest_allowed = time.time() - settings.orphan_grace_seconds
    old_blobs = [sha256 for sha256, modified in ctx.storage.iter_blobs() if modified < oldest_allowed]
    for start in range(0, len(old_blobs), 500):
        chunk = old_blobs[start : start + 500]
        referenced = {row[0] for row in Blob.select(Blob.sha256).where(Blob.sha256.in_(chunk)).tuples()}
        for sha256 in set(chunk) - referenced:
            if reclaim_if_unreferenced(ctx.storage, sha256):
                orphans += 1
    ctx.storage.remove_partial_writes(oldest_allowed)
    stale_links, renamed_links = _sync_links(ctx)
    result = {
        "expired_purged": purged,
        "orphan_blobs_reclaimed": orphans,
        "stale_links_removed": stale_links,
        "links_renamed": renamed_links,
    }
    if any(result.values()):
        log.info("sweep: %s", result)
    return result


def _sync_links(ctx):
    """Drop fast-path links whose image is gone or no longer public, and signed links whose image is gone
    (left by a crash mid-change); rename links an older release named otherwise. Returns (removed, renamed)."""
    if ctx.links is None:
        return 0, 0
    removed = renamed = 0
    for signed in (False, True):
        tokens = list(ctx.links.iter_tokens(signed=signed))
        for start in range(0, len(tokens), 500):
            chunk = tokens[start : start + 500]
            query = Image.select(Image.token, Image.sha256, Image.expires_at, Image.updated_at).where(Image.token.in_(chunk))
            kept = {row.token: row for row in (query if signed else query.where(Image.visibility == "public")).namedtuples()}
            for token in set(chunk) - set(kept):
                ctx.links.remove(token, signed=signed)
                removed += 1
            for image in kept.values():
                # Without its current name nginx's kept decisions miss the link, and every read goes to the app.
                renamed += ctx.links.rename_to_current(image, signed=signed)
    return removed, renamed
