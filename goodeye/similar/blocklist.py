"""The operator's blocklist: pictures no project may store, re-encoded or resized copies included.

An entry keeps the pHash of a picture and how many bits (`max_distance`, up to
16) an image may differ from it and still count as a copy. Every image about to
be stored (uploads, replacements, generated outputs) passes `check_not_blocked`;
`goodeye.similar.enforce` removes what was stored before an entry was added.
"""

from goodeye.db import database
from goodeye.errors import ImageBlocked, InvalidRequest, NotFound
from goodeye.ids import new_id
from goodeye.images.validation import validate_image
from goodeye.models import BlocklistEntry, iso
from goodeye.parsing import bounded_number
from goodeye.similar.bands import MAX_DISTANCE, hash_bits, phash_columns
from goodeye.similar.index import band_union, distance_sql

MAX_REASON_CHARS = 500
# Entries up to this distance are found through the band index (188 lookups at 8).
# Wider ones are read one by one (an index range on max_distance): the lookups
# for 16 (4,608 of them) cost more than reading thousands of entries.
_LOOKUP_UP_TO = 8


def check_not_blocked(phash):
    """Raise ImageBlocked when `phash` lies within an entry's max_distance of its hash."""
    # The widest entries decide how far the band lookups reach and whether any
    # must be read one by one; an empty list costs this one query (two index ends).
    widest, widest_looked_up = database.execute_sql(
        "SELECT (SELECT MAX(max_distance) FROM blocklist_entry),"
        f" (SELECT MAX(max_distance) FROM blocklist_entry WHERE max_distance <= {_LOOKUP_UP_TO})"
    ).fetchone()
    parts = []
    if widest_looked_up is not None:
        parts.append(band_union(
            "blocklist_entry", phash, widest_looked_up, "id",
            f"max_distance <= {_LOOKUP_UP_TO} AND {{distance}} <= max_distance", union="UNION ALL",
        ))
    if widest is not None and widest > _LOOKUP_UP_TO:
        distance = distance_sql("phash_bits", hash_bits(phash))
        parts.append(
            f"SELECT id, {distance} AS distance FROM blocklist_entry"
            f" WHERE max_distance > {_LOOKUP_UP_TO} AND {distance} <= max_distance"
        )
    if parts and database.execute_sql(f"{' UNION ALL '.join(parts)} LIMIT 1").fetchone() is not None:
        raise ImageBlocked()


def add_entry(data, *, limits, max_distance, reason=""):
    """Block the picture in `data` (validated like an upload) for images within `max_distance` bits."""
    max_distance = bounded_number(max_distance, "max_distance", 0, MAX_DISTANCE)
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
        raise InvalidRequest(f"reason may be at most {MAX_REASON_CHARS} characters.")
    info = validate_image(data, limits)
    return BlocklistEntry.create(
        id=new_id("blk"), phash=info.phash, **phash_columns(info.phash), max_distance=max_distance, reason=reason
    )


def list_entries():
    """Every entry, oldest first."""
    return list(BlocklistEntry.select().order_by(BlocklistEntry.created_at, BlocklistEntry.id))


def remove_entry(entry_id):
    """Delete an entry by id, else NotFound."""
    if not BlocklistEntry.delete().where(BlocklistEntry.id == entry_id).execute():
        raise NotFound(f"No blocklist entry {entry_id!r}.")


def entry_record(entry):
    """The JSON of an entry, as `goodeye admin blocklist list --json` prints it."""
    return {
        "id": entry.id,
        "hash": entry.phash,
        "reason": entry.reason,
        "max_distance": entry.max_distance,
        "created_at": iso(entry.created_at),
    }
