"""`goodeye usage`: what the key's project keeps, against its quotas (talks to a Goodeye server)."""

import click

from goodeye.cli.common import emit
from goodeye.cli.remote import RemoteCommand, remote_command


def _of(used, limit, unit=""):
    return f"{used}{unit} of {limit}{unit}" if limit is not None else f"{used}{unit} (no quota)"


@click.command("usage", cls=RemoteCommand)
@remote_command
def usage(client, as_json):
    """Images and bytes the project keeps, and its quotas."""
    record = client.usage()
    emit(
        as_json,
        record,
        f"images\t{_of(record['images'], record['max_images'])}\n"
        f"storage\t{_of(record['storage_bytes'], record['max_storage_bytes'], ' bytes')}",
    )
