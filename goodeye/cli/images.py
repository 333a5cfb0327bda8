"""`goodeye images ...`: manage hosted images on a Goodeye server over HTTP."""

import os
import sys

import click

from goodeye.cli.common import emit, fail
from goodeye.cli.remote import EXIT_NOT_CONFIRMED, RemoteGroup, remote_command

VISIBILITY = click.Choice(["private", "public"])
# Below this a progress bar would only flash.
PROGRESS_MIN_BYTES = 1024 * 1024


class TtlOrPermanent(click.ParamType):
    """A positive number of seconds, or the word `permanent` (returned as None)."""

    name = "N|permanent"

    def convert(self, value, param, ctx):
        if value == "permanent":
            return None
        try:
            seconds = int(value)
        except ValueError:
            seconds = 0
        if seconds < 1:
            self.fail(f"{value!r} is neither a positive number of seconds nor 'permanent'", param, ctx)
        return seconds


def image_line(record):
    """One tab-separated line: id, url, visibility, expiry ('never' without one)."""
    return "\t".join([record["id"], record["url"], record["visibility"], record["expires_at"] or "never"])


def _show_progress():
    """A bar only when a person watches: both stdout and stderr are terminals."""
    return sys.stdout.isatty() and sys.stderr.isatty()


@click.group(cls=RemoteGroup)
def images():
    """Upload and manage hosted images (talks to a Goodeye server)."""


@images.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--visibility", type=VISIBILITY, help="Who may fetch the URL (default: private).")
@click.option("--ttl", type=click.IntRange(min=1), metavar="N", help="Seconds until the image expires (default: never).")
@click.option("--alias", metavar="@NAME", help="A stable project-wide name, served at /cdn/ORG/PROJECT/img/@NAME.")
@click.option("--filename", help="The project-unique file name (default: the file's own name).")
@click.option("--strip-metadata", is_flag=True, help="Store it without EXIF/GPS, XMP, comments (pixels, colour profile and orientation kept).")
@remote_command
def upload(path, visibility, ttl, alias, filename, strip_metadata, client, as_json):
    """Upload an image; prints its id and its stable URL."""
    size = os.path.getsize(path)
    placement = {"visibility": visibility, "ttl_seconds": ttl, "alias": alias, "filename": filename, "strip_metadata": strip_metadata}
    if as_json or size < PROGRESS_MIN_BYTES or not _show_progress():
        record = client.upload_file(path, **placement)
    else:
        with click.progressbar(length=size, label="uploading", file=sys.stderr) as bar:
            sent = [0]

            def progress(done, total):
                # The multipart body is a little longer than the file; the bar tracks the file.
                step = min(done, size) - sent[0]
                sent[0] += step
                bar.update(step)

            record = client.upload_file(path, **placement, progress=progress)
    emit(as_json, record, f"{record['id']}\t{record['url']}")


@images.command("list")
@click.option("--source", type=click.Choice(["upload", "generated"]), help="Only uploaded or only generated images.")
@click.option("--visibility", type=VISIBILITY, help="Only private or only public images.")
@click.option("--limit", type=click.IntRange(1, 100), help="Images per page (server default 20).")
@click.option("--cursor", help="Continue after a page: its next_cursor.")
@click.option("--all", "follow", is_flag=True, help="Follow the cursors and list every image.")
@remote_command
def list_images(source, visibility, limit, cursor, follow, client, as_json):
    """List your images, newest first: id, url, visibility, expiry."""
    if follow:
        if cursor:
            raise click.UsageError("--all and --cursor cannot be used together")
        page = {"data": list(client.iter_images(source=source, visibility=visibility, limit=limit)), "next_cursor": None}
    else:
        page = client.list_images(source=source, visibility=visibility, limit=limit, cursor=cursor)
    emit(as_json, page, "\n".join(image_line(record) for record in page["data"]))
    if not as_json and page["next_cursor"]:
        click.echo(f"more: --cursor {page['next_cursor']} (or --all)", err=True)


@images.command("get")
@click.argument("image_id")
@remote_command
def get(image_id, client, as_json):
    """Show one image record, one `field<TAB>value` per line."""
    record = client.get_image(image_id)
    lines = [f"{key}\t{'' if value is None else value}" for key, value in record.items() if not isinstance(value, dict)]
    emit(as_json, record, "\n".join(lines))


def _update(client, as_json, image_id, changes):
    record = client.update_image(image_id, changes)
    emit(as_json, record, image_line(record))


@images.command("update")
@click.argument("image_id")
@click.option("--visibility", type=VISIBILITY, help="Make the image public or private.")
@click.option("--ttl", type=click.IntRange(min=1), metavar="N", help="Expire N seconds from now.")
@click.option("--permanent", is_flag=True, help="Remove any expiry.")
@remote_command
def update(image_id, visibility, ttl, permanent, client, as_json):
    """Change visibility or expiry; the URL never changes."""
    if ttl is not None and permanent:
        raise click.UsageError("--ttl and --permanent cannot be used together")
    changes = {}
    if visibility:
        changes["visibility"] = visibility
    if ttl is not None:
        changes["ttl_seconds"] = ttl
    if permanent:
        changes["permanent"] = True
    _update(client, as_json, image_id, changes)


@images.command("share")
@click.argument("image_id")
@remote_command
def share(image_id, client, as_json):
    """Make an image public (same as `update ID --visibility public`)."""
    _update(client, as_json, image_id, {"visibility": "public"})


@images.command("unshare")
@click.argument("image_id")
@remote_command
def unshare(image_id, client, as_json):
    """Make an image private (same as `update ID --visibility private`)."""
    _update(client, as_json, image_id, {"visibility": "private"})


@images.command("set-ttl")
@click.argument("image_id")
@click.argument("ttl", type=TtlOrPermanent())
@remote_command
def set_ttl(image_id, ttl, client, as_json):
    """Expire in N seconds from now, or `permanent` to remove the expiry."""
    _update(client, as_json, image_id, {"ttl_seconds": ttl} if ttl else {"permanent": True})


@images.command("delete")
@click.argument("image_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@remote_command
def delete(image_id, yes, client, as_json):
    """Delete an image for good: its URL stops resolving at once. Asks first unless --yes."""
    if not yes:
        try:
            confirmed = click.confirm(f"Delete {image_id} for good?", err=True)
        except click.Abort:  # no answer on stdin counts as no
            confirmed = False
        if not confirmed:
            fail("not confirmed: nothing deleted (pass --yes to skip the question)", EXIT_NOT_CONFIRMED)
    client.delete_image(image_id)
    emit(as_json, {"id": image_id, "deleted": True}, f"deleted {image_id}")
