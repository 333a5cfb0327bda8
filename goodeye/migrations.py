"""Schema creation and migrations, idempotent on SQLite and MySQL.

Each migration is a numbered function; `migrate()` applies those not yet
recorded in `schema_migration`. Later capabilities append to MIGRATIONS.
"""

import secrets

from playhouse.migrate import SchemaMigrator, migrate as migrate_schema

from goodeye.db import database
from goodeye.models import (
    CORE_MODELS,
    LIVE_MODELS,
    BlocklistEntry,
    Generation,
    Image,
    LinkChange,
    LinkClock,
    Project,
    RateLimitCounter,
    SchemaMigration,
    ServerSecret,
    ServingNode,
    SigningKey,
    Variant,
)
from goodeye.similar.bands import BANDS, phash_columns

_FILL_BATCH = 1000


def _create_core_tables():
    database.create_tables(CORE_MODELS, safe=True)


def _create_generation_table():
    database.create_tables([Generation], safe=True)


def _add_column_once(model, field):
    # Databases made after the field joined the model got it when the table was created;
    # add_column also creates the field's index.
    table = model._meta.table_name
    if field.column_name not in {column.name for column in database.get_columns(table)}:
        migrate_schema(SchemaMigrator.from_database(database.obj).add_column(table, field.column_name, field))


def _create_live_tables():
    _add_column_once(Image, Image.live_scope_id)
    database.create_tables(LIVE_MODELS, safe=True)


def _create_token_secret():
    database.create_tables([ServerSecret], safe=True)
    # INSERT IGNORE: when several nodes migrate at once, the first secret wins.
    ServerSecret.insert(name="token_mac", value=secrets.token_hex(32)).on_conflict_ignore().execute()


def _add_limits_storage():
    database.create_tables([RateLimitCounter], safe=True)
    _add_column_once(Project, Project.live_generations_per_ip_per_hour)


def _create_variant_table():
    database.create_tables([Variant], safe=True)


def _create_phash_index():
    # Databases made before this migration lack the band columns; newer ones got them from migration 1.
    if "phash_bits" not in {column.name for column in database.get_columns("image")}:
        migrator = SchemaMigrator.from_database(database.obj)
        names = ["phash_bits", *(f"phash_band{band}" for band in range(BANDS))]
        migrate_schema(*(migrator.add_column("image", name, getattr(Image, name)) for name in names))
        migrate_schema(
            *(migrator.add_index("image", (f"phash_band{band}", "project_id", "phash_bits")) for band in range(BANDS))
        )
    database.create_tables([BlocklistEntry], safe=True)
    _fill_phash_index()


def _fill_phash_index():
    """Cut the pHash of every image stored before the index existed, in batches by primary key."""
    after = 0
    while True:
        batch = list(
            Image.select(Image.pk, Image.phash)
            .where(Image.phash_bits.is_null() & (Image.pk > after))
            .order_by(Image.pk)
            .limit(_FILL_BATCH)
            .tuples()
        )
        if not batch:
            return
        with database.atomic():
            for pk, phash in batch:
                Image.update(**phash_columns(phash)).where(Image.pk == pk).execute()
        after = batch[-1][0]


def _add_project_usage():
    for field in (Project.max_images, Project.max_storage_bytes, Project.image_count, Project.storage_bytes):
        _add_column_once(Project, field)
    # The counters start from the rows as they are; from here on every insert and delete moves them.
    database.execute_sql(
        "UPDATE project SET"
        " image_count = (SELECT COUNT(*) FROM image WHERE image.project_id = project.id),"
        " storage_bytes = (SELECT COALESCE(SUM(size_bytes), 0) FROM image WHERE image.project_id = project.id)"
    )


def _create_node_tables():
    database.create_tables([LinkClock, LinkChange, ServingNode], safe=True)
    LinkClock.insert(id=1, last=0).on_conflict_ignore().execute()


def _create_signing_keys():
    database.create_tables([SigningKey], safe=True)


MIGRATIONS = [
    (1, "core tables: org, project, api_key, blob, image", _create_core_tables),
    (2, "generation: one row per call to an image generator", _create_generation_table),
    (3, "live URLs: live_scope, live_cache_entry, prompt_url_cache, image.live_scope_id", _create_live_tables),
    (4, "server_secret: the key that signs serving tokens", _create_token_secret),
    (6, "rate_limit_counter (database:// limits), project.live_generations_per_ip_per_hour", _add_limits_storage),
    (7, "variant: rendered sizes and formats of an original, by its sha256 and the render key", _create_variant_table),
    (8, "signing_key: each project's secret for signed serving URLs", _create_signing_keys),
    (9, "similar images: image.phash_bits and phash_band0-3 (filled, indexed), blocklist_entry", _create_phash_index),
    (10, "project quotas and usage counters, backfilled from the image rows", _add_project_usage),
    (11, "link_clock, link_change, serving_node: nodes' copies of public S3 blobs follow every change", _create_node_tables),
]


def pending_migrations():
    """The (version, description) pairs not yet applied."""
    database.create_tables([SchemaMigration], safe=True)
    applied = {row.version for row in SchemaMigration.select(SchemaMigration.version)}
    return [(version, description) for version, description, _ in MIGRATIONS if version not in applied]


def migrate():
    """Apply every pending migration, in order; return the versions applied."""
    done = []
    pending = {version for version, _ in pending_migrations()}
    for version, _description, apply in MIGRATIONS:
        if version not in pending:
            continue
        apply()
        SchemaMigration.insert(version=version).on_conflict_ignore().execute()
        done.append(version)
    return done
