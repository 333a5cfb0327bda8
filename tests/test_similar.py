"""Similar images and the blocklist at the service level, on SQLite and on MySQL.

Exactness is checked against a brute-force scan over a few thousand random
hashes with neighbours planted at every distance from 0 to 17, so every bound
is met exactly by some row.
"""

import random
from datetime import timedelta

import pytest
from playhouse.migrate import SchemaMigrator, migrate as schema_migrate

from goodeye import create_app
from goodeye.config import load_settings
from goodeye.context import current_context
from goodeye.errors import ImageBlocked, InvalidRequest
from goodeye.identity.service import create_org, create_project
from goodeye.images.validation import ImageLimits, validate_image
from goodeye.db import database
from goodeye.migrations import migrate
from goodeye.generation import builtin
from goodeye.models import BlocklistEntry, Image, LiveCacheEntry, LiveScope, SchemaMigration, utcnow
from goodeye.parsing import bounded_number
from goodeye.similar import blocklist
from goodeye.similar.bands import HASH_BITS, band_lookups, band_radii, hamming, hash_bands, hash_bits, hash_hex, phash_columns
from goodeye.similar.service import find_similar
from tests.similar_helpers import flip_bits, insert_rows, near_duplicates, noise, scene, synthetic_rows

RANDOM_ROWS = 2500
BOUNDS = (0, 1, 3, 4, 5, 8, 11, 16)


@pytest.fixture(params=["sqlite", "mysql"])
def app_ctx(request, tmp_path, database_kind, mysql_databases):
    env = {"GOODEYE_DATA_DIR": str(tmp_path)}
    if request.param == "mysql":
        if database_kind != "mysql":
            pytest.skip("MySQL is not reachable (CI=true fails the run instead)")
        env["GOODEYE_DATABASE_URL"] = mysql_databases.create()
    app = create_app(load_settings(env))
    with app.app_context():
        migrate()
        yield current_context()


def _project(slug):
    create_org("acme")
    return create_project(f"acme/{slug}")[0].id


def brute_force(project_id, bits, max_distance, limit, now):
    """What comparing against every image of the project answers."""
    rows = Image.select(Image.pk, Image.phash, Image.expires_at).where(Image.project == project_id).tuples()
    close = [
        (hamming(hash_bits(phash), bits), -pk)
        for pk, phash, expires_at in rows
        if (expires_at is None or expires_at > now) and hamming(hash_bits(phash), bits) <= max_distance
    ]
    return [(distance, -negative_pk) for distance, negative_pk in sorted(close)[:limit]]


def test_the_band_bound_finds_every_hash_within_the_distance():
    rng = random.Random(3)
    for max_distance in range(17):
        radii = band_radii(max_distance)
        for _ in range(200):
            query = rng.getrandbits(HASH_BITS)
            other = flip_bits(query, max_distance, rng)
            lookups = dict(band_lookups(hash_hex(query), max_distance))
            shared = [band for band, values in lookups.items() if hash_bands(hash_hex(other))[band] in values]
            assert shared, (max_distance, radii)


def test_search_equals_brute_force_and_stays_in_the_project(app_ctx):
    rng = random.Random(11)
    project, other = _project("one"), _project("two")
    bases = [rng.getrandbits(HASH_BITS) for _ in range(12)]
    planted = [flip_bits(base, k, rng) for base in bases for k in range(18)]
    rows = [rng.getrandbits(HASH_BITS) for _ in range(RANDOM_ROWS)] + planted
    insert_rows(synthetic_rows(project, rows))
    insert_rows(synthetic_rows(project, [flip_bits(base, 2, rng) for base in bases], expires_at=utcnow() - timedelta(seconds=1)))
    # The other project holds the very same hashes: none of them may show up.
    insert_rows(synthetic_rows(other, bases + planted))
    now = utcnow()
    queries = bases[:6] + [rng.getrandbits(HASH_BITS) for _ in range(4)]
    for bits in queries:
        for max_distance in BOUNDS:
            found = find_similar(project, hash_hex(bits), max_distance, limit=100)
            assert [(image.distance, image.pk) for image in found] == brute_force(project, bits, max_distance, 100, now)
            assert {image.project_id for image in found} <= {project}
    limited = find_similar(project, hash_hex(bases[0]), 16, limit=5)
    assert [(image.distance, image.pk) for image in limited] == brute_force(project, bases[0], 16, 5, now)


def test_the_blocklist_refuses_within_each_entrys_own_distance(app_ctx):
    rng = random.Random(5)
    limits = ImageLimits()
    entries = [
        blocklist.add_entry(scene(seed), limits=limits, max_distance=distance, reason=f"seed {seed}")
        for seed, distance in ((1, 4), (2, 16), (3, 0))
    ]
    blocklist.check_not_blocked(hash_hex(rng.getrandbits(HASH_BITS)))  # far from all three (about 32 bits)
    for entry in entries:
        bits = hash_bits(entry.phash)
        with pytest.raises(ImageBlocked):
            blocklist.check_not_blocked(hash_hex(flip_bits(bits, entry.max_distance, rng)))
    # One bit past an entry's own bound passes, though another entry reaches 16.
    blocklist.check_not_blocked(hash_hex(flip_bits(hash_bits(entries[0].phash), 5, rng)))
    blocklist.remove_entry(entries[1].id)
    blocklist.check_not_blocked(hash_hex(flip_bits(hash_bits(entries[1].phash), 3, rng)))
    assert [e.id for e in blocklist.list_entries()] == [entries[0].id, entries[2].id]


def test_the_blocklist_check_equals_brute_force(app_ctx):
    rng = random.Random(9)
    hashes = [rng.getrandbits(HASH_BITS) for _ in range(300)]
    BlocklistEntry.insert_many(
        [
            {"id": f"blk_{i}", "phash": hash_hex(bits), **phash_columns(hash_hex(bits)), "max_distance": rng.randrange(17)}
            for i, bits in enumerate(hashes)
        ]
    ).execute()
    bounds = {row.id: row.max_distance for row in BlocklistEntry.select()}
    for i in range(200):
        query = flip_bits(hashes[i % len(hashes)], rng.randrange(20), rng) if i % 2 else rng.getrandbits(HASH_BITS)
        expected = any(hamming(bits, query) <= bounds[f"blk_{j}"] for j, bits in enumerate(hashes))
        try:
            blocklist.check_not_blocked(hash_hex(query))
            blocked = False
        except ImageBlocked:
            blocked = True
        assert blocked == expected


@pytest.mark.parametrize("seed", [1, 2])
def test_near_duplicates_are_close_and_unrelated_pictures_far(seed):
    limits = ImageLimits()
    original = validate_image(scene(seed), limits).phash
    for how, data in near_duplicates(scene(seed)).items():
        assert hamming(hash_bits(original), hash_bits(validate_image(data, limits).phash)) <= 8, how
    for unrelated in (scene(seed + 100), scene(seed + 200), noise(seed)):
        assert hamming(hash_bits(original), hash_bits(validate_image(unrelated, limits).phash)) > 8


@pytest.mark.parametrize("value", [-1, 17, 8.5, "eight", "8.5", "-1", "", True, None])
def test_max_distance_must_be_a_whole_number_from_0_to_16(value):
    with pytest.raises(InvalidRequest):
        bounded_number(value, "max_distance", 0, 16)


def test_a_live_url_whose_render_is_blocked_answers_451_and_stores_nothing(tmp_path, monkeypatch):
    # A live URL renders with a random seed; fixing it makes the render, and so the match, certain.
    monkeypatch.setattr(builtin.secrets, "randbelow", lambda _bound: 7)
    app = create_app(load_settings({"GOODEYE_DATA_DIR": str(tmp_path)}))
    with app.app_context():
        migrate()
        _project("site")
        blocklist.add_entry(builtin.render("a lighthouse", 7), limits=ImageLimits(), max_distance=4)
    response = app.test_client().get("/cdn/acme/site/live/main?prompt=a%20lighthouse&autoEnhance=false")
    assert response.status_code == 451
    assert response.json == {"success": False, "error": {"code": "IMAGE_BLOCKED", "message": response.json["error"]["message"]}}
    with app.app_context():
        assert Image.select().count() == 0 and LiveCacheEntry.select().count() == 0
        assert [scope.current_generations for scope in LiveScope.select()] == [0]
    assert not any(path.is_file() for path in (tmp_path / "blobs").rglob("*"))


def test_migration_9_adds_and_fills_the_index_of_images_stored_before_it(app_ctx):
    project = _project("old")
    rng = random.Random(4)
    bits = rng.getrandbits(HASH_BITS)
    neighbour = flip_bits(bits, 3, rng)
    insert_rows(synthetic_rows(project, [bits, neighbour, rng.getrandbits(HASH_BITS)]))
    # Back to the schema before migration 9: no band columns, no blocklist table.
    migrator = SchemaMigrator.from_database(database.obj)
    names = ["phash_bits", *(f"phash_band{band}" for band in range(4))]
    schema_migrate(*(migrator.drop_index("image", f"image_phash_band{band}_project_id_phash_bits") for band in range(4)))
    schema_migrate(*(migrator.drop_column("image", name) for name in names))
    database.drop_tables([BlocklistEntry])
    SchemaMigration.delete().where(SchemaMigration.version == 9).execute()

    assert migrate() == [9]
    found = find_similar(project, hash_hex(bits), 8)
    assert [(image.distance, image.phash) for image in found] == [(0, hash_hex(bits)), (3, hash_hex(neighbour))]
    assert BlocklistEntry.select().count() == 0
