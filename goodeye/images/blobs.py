"""Reference-counted, content-addressed blobs.

Every image holds one reference to the blob of its bytes, and so does every
rendered variant to the blob of its own (cache entries and links name images,
not blobs; a variant goes with the blob it was rendered from). A reference is
taken in the same transaction that inserts the image, with the blob row locked
while the bytes are written; it is released in the transaction that deletes
the image row, and only when that DELETE removed the row (goodeye/images/service.py
owns both). The last reference's release deletes the row and then, after the
commit and under a lock on that key, the bytes. So a concurrent upload of the
same bytes either sees the row and keeps the file, or waits and writes it again.
check_blobs recounts all of it from the image rows (`goodeye admin blobs check`).
"""

import logging
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field

from peewee import fn

from goodeye.db import current_database, database, for_update, is_sqlite, retry_on_deadlock, using
from goodeye.models import Blob, Image, Variant
from goodeye.projects.quota import recount_usage, usage_drift
from goodeye.storage import StorageUnavailable

log = logging.getLogger(__name__)


def acquire_blob(storage, info, data):
    """Take a reference to the blob of `data`, writing the bytes if needed. Call inside a transaction."""
    (
        Blob.insert(sha256=info.sha256, size_bytes=info.size_bytes, content_type=info.content_type, refs=1)
        .on_conflict(
            # SQLite's upsert must name the conflicting key; MySQL's must not.
            conflict_target=[Blob.sha256] if is_sqlite() else None,
            update={Blob.refs: Blob.refs + 1},
        )
        .execute()
    )
    storage.put(info.sha256, data, info.content_type)


# A stored variant holds a reference to its bytes, unless they are its source's own (a render
# identical to the original, as Pillow may make of a PNG asked as a PNG no smaller): that
# reference would keep the source alive for ever, since variants go when their source does.
HOLDS_A_REFERENCE = Variant.variant_sha256.is_null(False) & (Variant.variant_sha256 != Variant.source_sha256)


def release_blobs(counts):
    """Drop references (sha256 -> how many) in the caller's transaction; the blobs left with none.

    A blob left without references loses its row in the same transaction; its bytes
    go after the commit (reclaim_if_unreferenced), when no upload has revived it.
    """
    unreferenced = []
    # One order for every transaction, so two releases of several blobs never deadlock.
    for sha256, count in sorted(counts.items()):
        Blob.update(refs=Blob.refs - count).where(Blob.sha256 == sha256).execute()
        if Blob.delete().where((Blob.sha256 == sha256) & (Blob.refs <= 0)).execute():
            unreferenced.append(sha256)
    # Variants go with the bytes they were rendered from, and release their own.
    variants = delete_variant_rows(Variant.source_sha256.in_(unreferenced)) if unreferenced else None
    return unreferenced + (release_blobs(variants) if variants else [])


def delete_variant_rows(condition=None):
    """In the caller's transaction, delete the variant rows meeting `condition` (all: None); the references they held."""
    query = Variant.select(Variant.pk, Variant.variant_sha256).where(HOLDS_A_REFERENCE)
    if condition is not None:
        query = query.where(condition)
    held = Counter()
    for pk, variant_sha256 in list(query.tuples()):
        # Each row's own DELETE decides, as for images: a row another transaction took releases nothing here.
        if Variant.delete().where(Variant.pk == pk).execute():
            held[variant_sha256] += 1
    # Claims and renders identical to their source hold nothing; they go all the same.
    query = Variant.delete().where(~HOLDS_A_REFERENCE)
    (query if condition is None else query.where(condition)).execute()
    return held


def _holders():
    """sha256 -> how many image and variant rows hold a reference to it."""
    held = Counter(dict(Image.select(Image.sha256, fn.COUNT(Image.pk)).group_by(Image.sha256).tuples()))
    held.update(
        dict(Variant.select(Variant.variant_sha256, fn.COUNT(Variant.pk)).where(HOLDS_A_REFERENCE).group_by(Variant.variant_sha256).tuples())
    )
    return held


def reclaim_later(storage, sha256s, delay):
    """reclaim_if_unreferenced each blob `delay` seconds from now, in a thread of this process.

    A process that stops first leaves bytes without a row: the sweeper reclaims those.
    """
    db = current_database()  # the timer's thread has no app: it uses the database this one does

    def reclaim():
        try:
            with using(db), db.connection_context():
                for sha256 in sha256s:
                    reclaim_if_unreferenced(storage, sha256)
        except Exception:
            log.warning("could not reclaim blobs %s; the sweeper will", sha256s, exc_info=True)

    if sha256s:
        timer = threading.Timer(delay, reclaim)
        timer.daemon = True
        timer.start()


@retry_on_deadlock
def reclaim_if_unreferenced(storage, sha256):
    """Delete the bytes of a blob that has no row, holding a lock so no upload revives it meanwhile."""
    with database.atomic():
        # On MySQL a locking read of a missing key locks the gap, so an upload
        # of the same bytes waits for this transaction before inserting its row.
        if for_update(Blob.select(Blob.sha256).where(Blob.sha256 == sha256)).exists():
            return False
        try:
            storage.delete(sha256)
        except StorageUnavailable:
            # The record is gone already; the sweeper reclaims the bytes once the store is back.
            return False
        return True



@dataclass
class BlobReport:
    """How the blob rows, the images and the stored bytes disagree (what `goodeye admin blobs check` prints)."""

    blob_rows: int = 0
    images: int = 0
    wrong_refs: list = field(default_factory=list)
    unreferenced_rows: list = field(default_factory=list)
    missing_rows: list = field(default_factory=list)
    orphan_files: list = field(default_factory=list)
    missing_files: list = field(default_factory=list)
    wrong_usage: list = field(default_factory=list)
    repaired: bool = False

    def drift(self):
        """Whether anything disagrees."""
        return any((self.wrong_refs, self.unreferenced_rows, self.missing_rows, self.orphan_files, self.missing_files,
                    self.wrong_usage))

    def record(self):
        """The JSON shape of the report."""
        return {**asdict(self), "drift": self.drift()}


def check_blobs(storage, repair=False):
    """Recompute every blob's references from the image and variant rows and compare them with the rows and the store.

    Each project's usage counters (its quotas' measure) are recounted from its
    image rows too. With `repair`: counts are set to the images that hold each
    blob, a missing row is made again, rows and bytes that no image references
    are deleted, and usage counters are set to what the images hold; `repaired`
    says whether there was anything to repair. Bytes that are gone cannot be repaired; they stay in the report.
    """
    held = _holders()
    rows = dict(Blob.select(Blob.sha256, Blob.refs).tuples())
    stored = {sha256 for sha256, _modified in storage.iter_blobs()}
    report = BlobReport(blob_rows=len(rows), images=sum(held.values()))
    for sha256, refs in sorted(rows.items()):
        if sha256 not in held:
            report.unreferenced_rows.append(sha256)
        elif refs != held[sha256]:
            report.wrong_refs.append({"sha256": sha256, "refs": refs, "images": held[sha256]})
    report.missing_rows = [{"sha256": sha256, "images": count} for sha256, count in sorted(held.items()) if sha256 not in rows]
    report.orphan_files = sorted(stored - set(rows) - set(held))
    report.missing_files = [{"sha256": sha256, "images": count} for sha256, count in sorted(held.items()) if sha256 not in stored]
    report.wrong_usage = usage_drift()
    if repair and report.drift():
        for sha256 in [item["sha256"] for item in report.wrong_refs + report.missing_rows] + report.unreferenced_rows:
            if _recount(sha256):
                reclaim_if_unreferenced(storage, sha256)
        for sha256 in report.orphan_files:
            reclaim_if_unreferenced(storage, sha256)
        for item in report.wrong_usage:
            recount_usage(item["project_id"])
        report.repaired = True
    return report


@retry_on_deadlock
def _recount(sha256):
    """Set one blob's row to the images and variants that hold it, under its lock; whether the row went (none left)."""
    with database.atomic():
        # The lock comes first, so the count below sees every transaction that
        # took or released a reference before us, and none can change it until we commit.
        row = for_update(Blob.select().where(Blob.sha256 == sha256)).first()
        images = Image.select(Image.size_bytes, Image.content_type).where(Image.sha256 == sha256)
        variants = Variant.select(Variant.size_bytes, Variant.content_type).where(Variant.variant_sha256 == sha256)
        count = images.count() + variants.count()
        if count == 0:
            return Blob.delete().where(Blob.sha256 == sha256).execute() > 0
        if row is None:
            sample = images.first() or variants.first()
            Blob.insert(sha256=sha256, size_bytes=sample.size_bytes, content_type=sample.content_type, refs=count).execute()
        else:
            Blob.update(refs=count).where(Blob.sha256 == sha256).execute()
        return False
