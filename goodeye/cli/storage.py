"""`goodeye admin storage ...`: moving blobs between the local directory and S3."""

import dataclasses
import sys

import click

from goodeye.cli.common import AdminGroup, emit, fail
from goodeye.config import ConfigError
from goodeye.db import database
from goodeye.storage import create_storage
from goodeye.storage.transfer import migrate_blobs, referenced_blobs

BACKENDS = click.Choice(["local", "s3"])


@click.group(cls=AdminGroup)
def storage():
    """Blob store maintenance."""


@storage.command("migrate")
@click.option("--to", "target", type=BACKENDS, required=True, help="The store to copy into.")
@click.option("--from", "source", type=BACKENDS, default=None, help="The store to copy from (default: GOODEYE_STORAGE).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def migrate(settings, target, source, as_json):
    """Copy every referenced blob into another store, verifying SHA-256; resumable, safe while serving."""
    source = source or settings.storage
    if source == target:
        fail(f"--from and --to are both {source}; nothing to copy")
    try:
        stores = [create_storage(dataclasses.replace(settings, storage=kind)) for kind in (source, target)]
    except ConfigError as exc:
        fail(str(exc))
    with database.connection_context():
        blobs = referenced_blobs()
        # The bar goes to stderr so stdout stays one scriptable summary.
        with click.progressbar(length=len(blobs), label=f"{source} -> {target}", file=sys.stderr) as bar:
            report = migrate_blobs(*stores, blobs, progress=bar.update)
    summary = report.as_dict()
    human = (
        f"copied={report.copied} present={report.present} gone={report.gone} "
        f"missing={len(report.missing)} corrupt={len(report.corrupt)}"
    )
    for sha256 in report.missing:
        human += f"\nmissing in {source}: {sha256}"
    for sha256 in report.corrupt:
        human += f"\ncorrupt (bytes do not match the name): {sha256}"
    emit(as_json, summary, human)
    if not report.ok:
        sys.exit(1)
