"""Reference-counted, content-addressed blobs.

Every image holds one reference to the blob of its bytes. A reference is taken
in the same transaction that inserts the image, with the blob row locked while
the bytes are written; a reference is released in the transaction that deletes
its image row, and only when that DELETE removed the row (goodeye/images/service.py
owns both). The last reference's release deletes the row and then, after the
commit and under a lock on that key, the bytes. So a concurrent upload of the same bytes
either sees the row and keeps the file, or waits and writes it again.
"""

from goodeye.db import database, for_update, is_sqlite
from goodeye.models import Blob
from goodeye.storage import StorageUnavailable


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
    return unreferenced


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

