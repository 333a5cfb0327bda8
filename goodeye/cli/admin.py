"""`goodeye admin ...`: operator commands acting on the configured database directly."""

import logging
import re
import signal
import time

import click

from goodeye import logs, metrics, migrations
from goodeye.cli.common import AdminGroup, command_context, emit, fail
from goodeye.cli.storage import storage
from goodeye.config import ConfigError, load_settings
from goodeye.context import Context
from goodeye.db import database
from goodeye.errors import GoodeyeError
from goodeye.identity import records as identity_records, service as identity
from goodeye.images.blobs import check_blobs
from goodeye.projects import quota, records as project_records, service as projects
from goodeye.similar import blocklist as blocklists
from goodeye.similar.bands import MAX_DISTANCE
from goodeye.similar.enforce import enforce
from goodeye.storage import create_storage
from goodeye.variants import service as variant_service

log = logging.getLogger(__name__)


_BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


class QuotaType(click.ParamType):
    """A quota: a whole number from 1 (bytes may carry a unit: 500MB, 10GiB), or `none` for no quota."""

    def __init__(self, units):
        self.units = units
        self.name = "N|none"

    def convert(self, value, param, ctx):
        text = str(value).strip().lower()
        if text == "none":
            return None
        match = re.fullmatch(r"(-?[0-9]+)\s*([a-z]*)", text)
        if match is None or (match.group(2) and not self.units) or match.group(2) not in _BYTE_UNITS:
            units = " or a whole number with a unit (KB, MB, GB, TB; KiB, MiB, GiB, TiB)" if self.units else ""
            self.fail(f"{value!r} is not a whole number{units}, or `none`.", param, ctx)
        number = int(match.group(1)) * _BYTE_UNITS[match.group(2)]
        if number < 1:
            self.fail(f"{value!r}: a quota is at least 1 (`none` removes it).", param, ctx)
        if number > quota.MAX_QUOTA:
            self.fail(f"{value!r}: a quota is at most {quota.MAX_QUOTA}.", param, ctx)
        return number


@click.group(cls=AdminGroup)
@click.pass_context
def admin(ctx):
    """Operator commands (database, orgs, projects, keys, blocklist, sweeper)."""
    try:
        ctx.obj = load_settings()
    except ConfigError as exc:
        fail(str(exc))


admin.add_command(storage)


@admin.group(cls=AdminGroup)
def db():
    """Schema creation and migrations."""


def _run_migrations(as_json):
    applied = migrations.migrate()
    emit(as_json, {"applied": applied}, f"applied migrations: {applied}" if applied else "schema is up to date")


@db.command("init", needs=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def db_init(as_json):
    """Create the schema (idempotent)."""
    _run_migrations(as_json)


@db.command("migrate", needs="database")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def db_migrate(as_json):
    """Apply pending migrations (idempotent)."""
    _run_migrations(as_json)


@admin.group(cls=AdminGroup)
def org():
    """Organisations."""


@org.command("create")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def org_create(slug, as_json):
    """Create an org (an existing one is not an error)."""
    row, created = identity.create_org(slug)
    payload = identity_records.org_record(row, created)
    emit(as_json, payload, f"{'created' if created else 'exists'} org {row.slug}")


@admin.group(cls=AdminGroup)
def project():
    """Projects."""


@project.command("create")
@click.argument("path", metavar="ORG/PROJECT")
@click.option("--no-live-scopes", is_flag=True, help="Do not create live scopes lazily.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def project_create(path, no_live_scopes, as_json):
    """Create a project (the same settings again is not an error)."""
    row, created = identity.create_project(path, allow_new_live_scopes=not no_live_scopes)
    payload = {**project_records.admin_project_record(row), "created": created}
    emit(as_json, payload, f"{'created' if created else 'exists'} project {path}")


class LiveLimit(click.ParamType):
    """A project's live generations per client address and hour, or `default` (None)."""

    name = "N|default"

    def convert(self, value, param, ctx):
        if value == "default":
            return None
        try:
            return projects.check_live_generations_per_ip_per_hour(int(value))
        except (ValueError, GoodeyeError):
            maximum = projects.MAX_LIVE_GENERATIONS_PER_IP_PER_HOUR
            self.fail(f"{value!r} is neither a whole number from 1 to {maximum} nor 'default'", param, ctx)


def _describe_project(path, row):
    live_limit = row.live_generations_per_ip_per_hour
    usage = project_records.usage_record(row)
    return (
        f"project {path}: new live scopes {'allowed' if row.allow_new_live_scopes else 'disabled'}, "
        f"live generations per address {f'{live_limit}/hour' if live_limit else 'the default (GOODEYE_LIVE_GENERATION_LIMIT)'}, "
        f"images {usage['images']} of {usage['max_images'] or 'no quota'}, "
        f"bytes {usage['storage_bytes']} of {usage['max_storage_bytes'] or 'no quota'}"
    )


@project.command("update")
@click.argument("path", metavar="ORG/PROJECT")
@click.option("--live-scopes/--no-live-scopes", default=None, help="Whether live URLs may create scopes on first request.")
@click.option(
    "--live-generations-per-ip-per-hour",
    "live_limit",
    type=LiveLimit(),
    help="Live-URL generations per client address and hour in this project; `default`: GOODEYE_LIVE_GENERATION_LIMIT.",
)
@click.option("--max-images", type=QuotaType(units=False), help="Most images the project keeps (`none`: no quota).")
@click.option(
    "--max-storage-bytes", type=QuotaType(units=True),
    help="Most bytes the project keeps: 1000000, 500MB, 10GiB (`none`: no quota).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def project_update(ctx, path, live_scopes, live_limit, max_images, max_storage_bytes, as_json):
    """Change a project's settings and quotas."""
    row = identity.get_project_by_path(path)
    if live_scopes is not None:
        projects.set_allow_new_live_scopes(row.id, live_scopes)

    # None is a value here (back to the default, or no quota): only an option that was given changes it.
    def given(name):
        return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE

    if given("live_limit"):
        projects.set_live_generations_per_ip_per_hour(row.id, live_limit)
    quota.set_quotas(
        row.id, **{name: value for name, value in (("max_images", max_images), ("max_storage_bytes", max_storage_bytes)) if given(name)}
    )
    row = identity.get_project_by_path(path)
    emit(as_json, project_records.admin_project_record(row), _describe_project(path, row))


@project.command("list")
@click.option("--org", "org_slug", metavar="ORG", help="Only this org's projects.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def project_list(org_slug, as_json):
    """Every project with its settings, usage and quotas."""
    rows = identity.list_projects(org_slug)
    lines = [_describe_project(f"{row.org.slug}/{row.slug}", row) for row in rows]
    emit(as_json, [project_records.admin_project_record(row) for row in rows], "\n".join(lines) or "no projects")


@admin.group(cls=AdminGroup)
def key():
    """API keys."""


@key.command("create")
@click.argument("path", metavar="ORG/PROJECT")
@click.option("--name", default="", help="A label for the key.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def key_create(path, name, as_json):
    """Mint a key; it is printed once and only its hash is kept."""
    row, plaintext = identity.create_key(identity.get_project_by_path(path), name)
    payload = {**identity_records.key_record(row), "project": path, "key": plaintext}
    emit(as_json, payload, f"{plaintext}\n(key id {row.id}; shown once, store it now)")


@key.command("list")
@click.argument("path", metavar="ORG/PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def key_list(path, as_json):
    """List a project's keys (never their secrets)."""
    records = [identity_records.key_record(row) for row in identity.list_keys(identity.get_project_by_path(path))]
    lines = [f"{r['id']}\t{r['prefix']}...\t{r['name'] or '-'}\t{'revoked' if r['revoked_at'] else 'active'}" for r in records]
    emit(as_json, records, "\n".join(lines) or "no keys")


@key.command("revoke")
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def key_revoke(key_id, as_json):
    """Revoke a key by its id; requests with it get 401 from now on."""
    row = identity.revoke_key(key_id)
    emit(as_json, identity_records.key_record(row), f"revoked {row.id}")


@admin.group(cls=AdminGroup)
def blobs():
    """Blob reference counts and stored bytes."""


@blobs.command("check")
@click.option("--repair", is_flag=True, help="Fix counts and missing rows; delete rows and bytes no image references.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def blobs_check(settings, repair, as_json):
    """Recount blob references and project usage from the images; exit 1 when something disagrees (or, with --repair, still does)."""
    report = check_blobs(create_storage(settings), repair=repair)
    lines = [
        f"{report.blob_rows} blob rows, {report.images} images",
        *(f"wrong refs: {item['sha256']} counts {item['refs']}, {item['images']} images hold it" for item in report.wrong_refs),
        *(f"unreferenced row: {sha256}" for sha256 in report.unreferenced_rows),
        *(f"missing row: {item['sha256']} ({item['images']} images)" for item in report.missing_rows),
        *(f"orphan file: {sha256}" for sha256 in report.orphan_files),
        *(f"missing file: {item['sha256']} ({item['images']} images)" for item in report.missing_files),
        *(
            f"wrong usage: {item['project']} counts {item['image_count']} images, {item['storage_bytes']} bytes; "
            f"its images are {item['images']}, {item['bytes']} bytes"
            for item in report.wrong_usage
        ),
    ]
    if report.repaired:
        lines.append("repaired" + ("; missing files cannot be restored" if report.missing_files else ""))
    elif repair:
        lines.append("no drift; nothing to repair")
    else:
        lines.append("drift found; --repair fixes it" if report.drift() else "no drift")
    emit(as_json, report.record(), "\n".join(lines))
    # What --repair cannot fix (bytes that are gone) still fails the command.
    if report.missing_files if repair else report.drift():
        raise SystemExit(1)


@admin.group(cls=AdminGroup)
def variants():
    """Rendered sizes and formats of images."""


@variants.command("purge")
@click.option("--image", "image_id", metavar="ID", help="Only the variants of this image's bytes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def variants_purge(settings, image_id, as_json):
    """Delete rendered variants (they are rendered again on their next request)."""
    purged = variant_service.purge_variants(command_context(settings), image_id)
    emit(as_json, {"purged": purged}, f"purged\t{purged}")


@variants.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def variants_stats(as_json):
    """How many variants are stored and rendering, and their bytes."""
    stats = variant_service.variant_stats()
    emit(as_json, stats, "\n".join(f"{name}\t{value}" for name, value in stats.items()))


@admin.command("sweep")
@click.option("--loop", is_flag=True, help="Keep sweeping every GOODEYE_SWEEP_INTERVAL_SECONDS.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def sweep_command(settings, loop, as_json):
    """Purge expired records past their grace and reclaim unreferenced blobs."""
    from goodeye.sweeper import sweep

    ctx = command_context(settings)
    if not loop:
        with database.connection_context():
            result = sweep(ctx)
        metrics.count_sweep("ok", result)
        emit(as_json, result, ", ".join(f"{k}={v}" for k, v in result.items()))
        return
    logs.configure(settings.log_format)
    while True:
        try:
            with database.connection_context():
                result = sweep(ctx)
            metrics.count_sweep("ok", result)
        except Exception:  # a database or store outage must not end the sweeper
            metrics.count_sweep("failed")
            log.exception("sweep failed; retrying in %ss", settings.sweep_interval_seconds)
        time.sleep(settings.sweep_interval_seconds)


@admin.command("follow-links")
@click.pass_obj
def follow_links_command(settings):
    """Keep this node's copies of public S3 blobs in step with every change (started by `goodeye serve`)."""
    from goodeye.serving.nodes import Follower, follows_changes, node_name

    ctx = command_context(settings)
    if not follows_changes(ctx):
        fail("Only nodes on S3 storage with GOODEYE_ACCEL=nginx keep copies to follow.")
    logs.configure(settings.log_format)
    follower = Follower(ctx, node_name(settings))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: follower.stopping.set())
    follower.run()


@admin.group(cls=AdminGroup)
def blocklist():
    """Pictures no project may store (re-encoded and resized copies included)."""


@blocklist.command("add")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--reason", default="", help="Why the picture is blocked (shown by `list`).")
@click.option(
    "--max-distance",
    type=click.IntRange(0, MAX_DISTANCE),
    help="pHash bits a copy may differ by and still be refused (default: GOODEYE_BLOCKLIST_DISTANCE).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def blocklist_add(settings, path, reason, max_distance, as_json):
    """Block the picture in FILE: uploads and generated images within --max-distance of it are refused."""
    with open(path, "rb") as handle:
        data = handle.read(settings.max_upload_bytes + 1)
    entry = blocklists.add_entry(
        data,
        limits=Context.image_limits_from(settings),
        max_distance=settings.blocklist_distance if max_distance is None else max_distance,
        reason=reason,
    )
    record = blocklists.entry_record(entry)
    emit(as_json, record, f"blocked {entry.id}\t{entry.phash}\tmax distance {entry.max_distance}")


@blocklist.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def blocklist_list(as_json):
    """Every entry: id, hash, max distance, reason."""
    records = [blocklists.entry_record(entry) for entry in blocklists.list_entries()]
    lines = [f"{r['id']}\t{r['hash']}\t{r['max_distance']}\t{r['reason'] or '-'}" for r in records]
    emit(as_json, records, "\n".join(lines) or "the blocklist is empty")


@blocklist.command("remove")
@click.argument("entry_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def blocklist_remove(entry_id, as_json):
    """Remove an entry; images like it may be stored again."""
    blocklists.remove_entry(entry_id)
    emit(as_json, {"id": entry_id, "removed": True}, f"removed {entry_id}")


@blocklist.command("enforce")
@click.option("--dry-run", is_flag=True, help="Only count the matching images; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def blocklist_enforce(settings, dry_run, as_json):
    """Delete every stored image, in any project, that an entry matches; say how many."""
    result = enforce(command_context(settings), dry_run=dry_run)
    human = (
        f"{result['matched']} stored images match the blocklist (dry run: nothing deleted)"
        if dry_run
        else f"deleted {result['deleted']} of {result['matched']} stored images matching the blocklist"
    )
    emit(as_json, result, human)
