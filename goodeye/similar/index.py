"""SQL on the pHash band index, shared by the similar-image search and the blocklist.

The SQL is written out here rather than built with peewee: the neighbour lists
run to thousands of integers at the widest distance, and peewee takes over
100 ms to render them as parameters, longer than the database takes to answer.
Every value inlined is an integer computed here, never text from a request.
"""

from goodeye.db import database, is_sqlite
from goodeye.similar.bands import band_lookups, hash_bits


def distance_sql(column, bits):
    """SQL for the Hamming distance between a BIGINT hash column and a 64-bit integer."""
    if is_sqlite():
        return f"hamming({column}, {int(bits)})"  # registered on every SQLite connection (goodeye/db.py)
    return f"BIT_COUNT({column} ^ {int(bits)})"


def band_union(table, phash, lookup_distance, columns, keep, union="UNION"):
    """A compound SELECT of one indexed lookup per band the bound for `lookup_distance` needs.

    Each row has `columns` and `distance`; `keep` is SQL each lookup also
    applies, with `{distance}` standing for the distance expression, so only
    rows that are really close leave the index.
    """
    distance = distance_sql("phash_bits", hash_bits(phash))
    condition = keep.format(distance=distance)
    return f" {union} ".join(
        f"SELECT {columns}, {distance} AS distance FROM {table} "
        f"WHERE phash_band{band} IN ({','.join(map(str, values))}) AND {condition}"
        for band, values in band_lookups(phash, lookup_distance)
    )


def placeholder():
    """The bound database's parameter placeholder."""
    return database.param
