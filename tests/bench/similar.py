"""scripts/bench-similar: the similar-image search and the blocklist check, timed at scale.

One project is seeded with synthetic pHashes (random 64-bit hashes, plus near
neighbours planted around the query images at distances 1 to 10) straight into
the database with multi-row INSERTs, since a million uploads would take hours.
After waiting (at most 2 minutes) for the load average to come down,
`GET /v1/images/{id}/similar` is timed through nginx at max_distance 4, 8 and
16, every answer is compared with a brute-force scan of all hashes (in numpy),
and the search function alone is timed in this process (the database's share). MySQL (1,000,000 rows) when GOODEYE_DATABASE_URL names a MySQL server,
and SQLite (100,000 rows). Last, the blocklist check's share of an upload's
server time with 10,000 entries.
"""

import contextlib
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from urllib.parse import urlparse

import click
import numpy as np
import pymysql
import requests

from goodeye.db import make_database, using
from goodeye.images.validation import ImageLimits, validate_image
from goodeye.models import BlocklistEntry, Image
from goodeye.similar.bands import HASH_BITS, hash_hex, phash_columns
from goodeye.similar.blocklist import check_not_blocked
from goodeye.similar.service import find_similar
from tests.bench.harness import PROJECT, BenchError, admin, bench_databases, median_ms, new_owner, noise_image, settle, start_stack

QUERIES = 100
DISTANCES = (4, 8, 16)
PLANTED_DISTANCES = (1, 2, 3, 4, 5, 6, 8, 10)
INSERT_BATCH = 5000
BLOCKLIST_ENTRIES = 10_000
UPLOADS = 40
# Seeding leaves MariaDB flushing for a while: wait (at most this long) for a quiet machine first.
SETTLE_SECONDS = 120
COLUMNS = (
    "id", "token", "project_id", "sha256", "content_type", "ext", "size_bytes", "width", "height", "frames", "phash",
    "phash_bits", "phash_band0", "phash_band1", "phash_band2", "phash_band3", "visibility", "source", "filename",
    "created_at", "updated_at",
)


def synthetic_hashes(rows, rng):
    """`rows` 64-bit hashes: QUERIES query hashes, their planted neighbours, then random ones."""
    queries = [rng.getrandbits(HASH_BITS) for _ in range(QUERIES)]
    planted = []
    for bits in queries:
        for distance in PLANTED_DISTANCES:
            flipped = bits
            for position in rng.sample(range(HASH_BITS), distance):
                flipped ^= 1 << position
            planted.append(flipped)
    rest = [rng.getrandbits(HASH_BITS) for _ in range(rows - len(queries) - len(planted))]
    return queries + planted + rest


def row_values(project_id, index, bits):
    phash = hash_hex(bits)
    columns = phash_columns(phash)
    return (
        f"img_bench{index:020d}", f"bench{index:020d}", project_id, "0" * 64, "image/png", "png", 1, 1, 1, 1, phash,
        columns["phash_bits"], columns["phash_band0"], columns["phash_band1"], columns["phash_band2"],
        columns["phash_band3"], "private", "upload", f"bench-{index}.png", "2026-01-01 00:00:00", "2026-01-01 00:00:00",
    )


def seed_mysql(url, project_id, hashes):
    """Insert the rows with multi-row INSERTs on one connection; the seconds it took."""
    parsed = urlparse(url)
    conn = pymysql.connect(host=parsed.hostname, port=parsed.port or 3306, user=parsed.username or "root",
                           password=parsed.password or "", database=parsed.path.lstrip("/"), autocommit=False)
    started = time.monotonic()
    sql = f"INSERT INTO image ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    with conn.cursor() as cur:
        cur.execute("SET unique_checks = 0")
        for start in range(0, len(hashes), INSERT_BATCH):
            cur.executemany(sql, [row_values(project_id, start + i, bits) for i, bits in enumerate(hashes[start : start + INSERT_BATCH])])
            conn.commit()
        cur.execute("ANALYZE TABLE image")
    conn.close()
    return round(time.monotonic() - started, 1)


def seed_sqlite(path, project_id, hashes):
    """Insert the rows in one transaction; the seconds it took."""
    started = time.monotonic()
    conn = sqlite3.connect(path)
    sql = f"INSERT INTO image ({', '.join(COLUMNS)}) VALUES ({', '.join(['?'] * len(COLUMNS))})"
    conn.executemany(sql, (row_values(project_id, i, bits) for i, bits in enumerate(hashes)))
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return round(time.monotonic() - started, 1)


def brute_force(all_bits, pks, query, max_distance):
    """[(distance, pk)] of every row within max_distance, nearest first then newest, the query row left out."""
    distances = np.bitwise_count(all_bits ^ np.uint64(query & (2**64 - 1)))
    hit = np.nonzero(distances <= max_distance)[0]
    pairs = sorted((int(distances[i]), -int(pks[i])) for i in hit)
    return [(d, -negative) for d, negative in pairs]


def percentile(values, share):
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)


def time_searches(stack, key, query_rows, all_bits, pks):
    """p50/p99 ms of GET .../similar per distance through nginx, and whether every answer equals brute force."""
    results = {}
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {key}"
        for max_distance in DISTANCES:
            times, exact = [], True
            for image_id, pk, bits in query_rows:
                started = time.perf_counter()
                response = session.get(f"{stack.url}/v1/images/{image_id}/similar", params={"max_distance": max_distance, "limit": 100})
                times.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise BenchError(f"similar answered {response.status_code}: {response.text[:300]}")
                got = [(r["distance"], int(r["id"].removeprefix("img_bench"))) for r in response.json()["data"]]
                expected = [(d, p) for d, p in brute_force(all_bits, pks, bits, max_distance) if p != pk][:100]
                # Row i has id img_bench{i} and pk i + first_pk.
                exact &= got == [(d, p - pks[0]) for d, p in expected]
            results[max_distance] = {"p50_ms": percentile(times, 0.5), "p99_ms": percentile(times, 0.99),
                                     "max_ms": round(max(times), 1), "queries": len(times), "identical_to_brute_force": exact}
    return results


def search_scenario(cleanup, root, name, database_url, rows, rng, settle_seconds):
    stack = start_stack(cleanup, root, name, database_url)
    key = new_owner(stack.env, "bench")
    database = make_database(stack.settings.database)
    with database.bind_ctx([Image]), database.connection_context():
        project_id = admin(stack.env, "project", "update", f"bench/{PROJECT}")["id"]
        hashes = synthetic_hashes(rows, rng)
        if database_url:
            seconds = seed_mysql(database_url, project_id, hashes)
        else:
            seconds = seed_sqlite(stack.settings.database.removeprefix("sqlite:///"), project_id, hashes)
        pk_rows = list(Image.select(Image.pk, Image.phash_bits).order_by(Image.pk).tuples())
    pks = np.array([pk for pk, _ in pk_rows], dtype=np.int64)
    all_bits = np.array([bits & (2**64 - 1) for _, bits in pk_rows], dtype=np.uint64)
    query_rows = [(f"img_bench{i:020d}", int(pks[i]), hashes[i]) for i in range(QUERIES)]
    settled = settle(settle_seconds)
    figures = time_searches(stack, key, query_rows, all_bits, pks)
    with using(database), database.connection_context():
        for max_distance, row in figures.items():
            row["in_process_p50_ms"], row["in_process_p99_ms"] = time_queries(project_id, query_rows, max_distance)
    return stack, key, {"rows": rows, "seed_seconds": seconds, "settled_seconds": settled, "similar": figures}


def time_queries(project_id, query_rows, max_distance):
    """p50 and p99 ms of find_similar itself (the database's share of a search), in this process."""
    times = []
    for _image_id, pk, bits in query_rows:
        started = time.perf_counter()
        find_similar(project_id, hash_hex(bits), max_distance, 100, exclude_pk=pk)
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 0.5), percentile(times, 0.99)


def blocklist_share(stack, key, rng):
    """Median upload time through nginx vs the in-process blocklist check, with BLOCKLIST_ENTRIES entries."""
    # check_not_blocked runs in this process, on the stack's database.
    database = make_database(stack.settings.database)
    png = noise_image("PNG", 1_000_000, np.random.default_rng(1))
    limits = ImageLimits()
    phash = validate_image(png, limits).phash
    with using(database), database.connection_context():
        entries = []
        for i in range(BLOCKLIST_ENTRIES):
            entry_hash = hash_hex(rng.getrandbits(HASH_BITS))
            entries.append({"id": f"blk_bench{i}", "phash": entry_hash, **phash_columns(entry_hash), "max_distance": 4, "reason": ""})
        for start in range(0, len(entries), 1000):
            BlocklistEntry.insert_many(entries[start : start + 1000]).execute()

        def check_ms(repeats=500):
            return median_ms(lambda _i: check_not_blocked(phash), repeats)

        check_at_4 = check_ms()
        upload_ms = time_uploads(stack, key, png)
        wide_hash = hash_hex(rng.getrandbits(HASH_BITS))
        BlocklistEntry.create(id="blk_bench_wide", phash=wide_hash, max_distance=16, **phash_columns(wide_hash))
        check_at_16 = check_ms(100)
    return {
        "entries": BLOCKLIST_ENTRIES,
        "upload_1mb_png_median_ms": upload_ms,
        "check_median_ms": check_at_4,
        "check_share_of_upload": round(check_at_4 / upload_ms, 4),
        "check_median_ms_with_one_16_bit_entry": check_at_16,
    }


def time_uploads(stack, key, png):
    times = []
    with requests.Session() as session:
        for i in range(UPLOADS):
            started = time.perf_counter()
            response = session.post(f"{stack.url}/v1/images", headers={"Authorization": f"Bearer {key}"},
                                    files={"file": (f"u{i}.png", png, "application/octet-stream")})
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 201:
                raise BenchError(f"upload answered {response.status_code}: {response.text[:300]}")
    return round(statistics.median(times), 2)


@click.command()
@click.option("--rows", type=int, default=1_000_000, help="Hashes in the MySQL project.")
@click.option("--sqlite-rows", type=int, default=100_000, help="Hashes in the SQLite project.")
@click.option("--settle-seconds", type=int, default=SETTLE_SECONDS, help="Longest wait for a quiet machine before timing.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the report here.")
def main(rows, sqlite_rows, settle_seconds, json_path):
    """Time the similar-image search and the blocklist check; print a JSON report."""
    rng = random.Random(2026)
    report = {"machine": {"nproc": os.cpu_count()}}
    with contextlib.ExitStack() as cleanup, tempfile.TemporaryDirectory(prefix="goodeye-bench-similar-") as root:
        (mysql_url,) = cleanup.enter_context(bench_databases(1))
        if mysql_url:
            stack, key, report["mysql"] = search_scenario(cleanup, root, "mysql", mysql_url, rows, rng, settle_seconds)
            report["blocklist"] = blocklist_share(stack, key, rng)
        _stack, _key, report["sqlite"] = search_scenario(cleanup, root, "sqlite", "", sqlite_rows, rng, settle_seconds)
    text = json.dumps(report, indent=2)
    click.echo(text)
    if json_path:
        with open(json_path, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
