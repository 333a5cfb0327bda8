"""`goodeye images ...`: manage hosted images on a Goodeye server over HTTP."""

import base64
import contextlib
import json
import os
import sys
import tempfile

import click
from werkzeug.datastructures import MultiDict

from goodeye.cli.common import PERMANENT, Ttl, emit, fail
from goodeye.cli.remote import EXIT_API_ERROR, EXIT_NOT_CONFIRMED, RemoteGroup, exit_code_for, remote_command
from goodeye.client import ClientError
from goodeye.config import ConfigError, load_settings
from goodeye.errors import InvalidRequest
from goodeye.variants.params import VariantSpec, parse_variant_params

VISIBILITY = click.Choice(["private", "public"])
# What a FILE argument that cannot be read is reported as (a usage error, exit 2).
NOT_A_FILE = "not_a_file"
EXIT_USAGE = 2
SIGNED_URL_MAX_SECONDS = 7 * 86400
# Below this a progress bar would only flash.
PROGRESS_MIN_BYTES = 1024 * 1024


class VariantParams(click.ParamType):
    """`w=640,fm=webp`: variant parameters, checked like a serving URL's (sizes from GOODEYE_VARIANT_SIZES)."""

    name = "w=N,h=N,fit=F,fm=F"

    def convert(self, value, param, ctx):
        if isinstance(value, VariantSpec):
            return value
        pairs = [item.partition("=") for item in value.split(",") if item.strip()]
        if not pairs or any(not sep for _name, sep, _value in pairs):
            self.fail(f"{value!r} is not a list of name=value pairs", param, ctx)
        try:
            args = MultiDict([(name.strip(), raw.strip()) for name, _sep, raw in pairs])
            spec = parse_variant_params(args, load_settings().variant_sizes)
        except (InvalidRequest, ConfigError) as exc:
            self.fail(str(exc), param, ctx)
        if spec is None:
            self.fail("name at least one of w, h, fit, fm", param, ctx)
        return spec


def image_line(record):
    """One tab-separated line: id, url, visibility, expiry ('never' without one)."""
    return "\t".join([record["id"], record["url"], record["visibility"], record["expires_at"] or "never"])


def _show_progress():
    """A bar only when a person watches: both stdout and stderr are terminals."""
    return sys.stdout.isatty() and sys.stderr.isatty()


@contextlib.contextmanager
def _progress(size, label, as_json):
    """A `progress(done, total)` callback drawing a bar on stderr, or None where no bar belongs."""
    if as_json or size < PROGRESS_MIN_BYTES or not _show_progress():
        yield None
        return
    with click.progressbar(length=size, label=label, file=sys.stderr) as bar:
        shown = [0]

        def progress(done, _total):
            # A multipart body is a little longer than the file; the bar tracks the file.
            step = min(done, size) - shown[0]
            shown[0] += step
            bar.update(step)

        yield progress


@click.group(cls=RemoteGroup)
def images():
    """Upload and manage hosted images (talks to a Goodeye server)."""


def _upload_one(client, path, placement, as_json):
    """Upload one FILE (or `-`, standard input); returns the record."""
    if path == "-":
        # As JSON, so that without --filename the server names it image-<random>.<its type's extension>.
        data = click.get_binary_stream("stdin").read(client.settings.max_upload_bytes + 1)
        return client.upload_base64(base64.b64encode(data).decode(), **placement)
    if os.path.isdir(path):
        raise ClientError(NOT_A_FILE, "is a directory")
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ClientError(NOT_A_FILE, (exc.strerror or str(exc)).lower()) from None
    with _progress(size, f"uploading {os.path.basename(path)}", as_json) as progress:
        return client.upload_file(path, **placement, progress=progress)


@images.command("upload")
@click.argument("paths", nargs=-1, required=True, metavar="FILE...")
@click.option("--visibility", type=VISIBILITY, help="Who may fetch the URLs (default: private).")
@click.option("--ttl", type=Ttl(), metavar="TTL", help="Expire after 3600, 90m, 12h, 7d, 2w or 1y (default: never).")
@click.option("--alias", metavar="@NAME", help="A stable project-wide name, served at /cdn/ORG/PROJECT/img/@NAME (one FILE only).")
@click.option("--filename", help="The project-unique file name (default: the file's own name; one FILE only).")
@click.option("--strip-metadata", is_flag=True, help="Store without EXIF/GPS, XMP, comments (pixels, colour profile and orientation kept).")
@remote_command
def upload(paths, visibility, ttl, alias, filename, strip_metadata, client, as_json):
    """Upload images (FILE, several, or - for standard input); prints `id<TAB>url` per image.

    A file that fails is reported on stderr and the others still upload; the
    exit code is non-zero when any failed.
    """
    if len(paths) > 1 and (alias or filename):
        raise click.UsageError("--alias and --filename name one image: give a single FILE")
    if "-" in paths and len(paths) > 1:
        raise click.UsageError("standard input (-) can only be uploaded alone")
    placement = {
        "visibility": visibility, "ttl_seconds": None if ttl == PERMANENT else ttl, "alias": alias,
        "filename": filename, "strip_metadata": strip_metadata,
    }
    if len(paths) == 1:
        # One file keeps the plain contract: its record (or its error and exit code).
        try:
            record = _upload_one(client, paths[0], placement, as_json)
        except ClientError as exc:
            if exc.slug != NOT_A_FILE:
                raise
            raise click.BadParameter(f"{paths[0]}: {exc.message}", param_hint="FILE") from None
        emit(as_json, record, f"{record['id']}\t{record['url']}")
        return
    results, exit_codes = [], set()
    for path in paths:
        try:
            record = _upload_one(client, path, placement, as_json)
        except ClientError as exc:
            click.echo(f"error: {path}: {exc.slug}: {exc.message}", err=True)
            results.append({"file": path, "error": {"code": exc.slug, "message": exc.message}})
            exit_codes.add(EXIT_USAGE if exc.slug == NOT_A_FILE else exit_code_for(exc))
            continue
        results.append(record)
        if not as_json:
            click.echo(f"{record['id']}\t{record['url']}")
    if as_json:
        click.echo(json.dumps(results, indent=2))
    if exit_codes:
        # One kind of failure keeps its own code (3: no key, 5: no server); a mix is 1.
        sys.exit(exit_codes.pop() if len(exit_codes) == 1 else EXIT_API_ERROR)


@images.command("list")
@click.option("--source", type=click.Choice(["upload", "generated"]), help="Only uploaded or only generated images.")
@click.option("--visibility", type=VISIBILITY, help="Only private or only public images.")
@click.option("--limit", type=click.IntRange(1, 100), help="Images per page (server default 20).")
@click.option("--cursor", help="Continue after a page: its next_cursor.")
@click.option("--all", "follow", is_flag=True, help="Follow the cursors and list every image.")
@remote_command
def list_images(source, visibility, limit, cursor, follow, client, as_json):
    """List your images, newest first: id, url, visibility, expiry, filename."""
    if follow:
        if cursor:
            raise click.UsageError("--all and --cursor cannot be used together")
        page = {"data": list(client.iter_images(source=source, visibility=visibility, limit=limit)), "next_cursor": None}
    else:
        page = client.list_images(source=source, visibility=visibility, limit=limit, cursor=cursor)
    emit(as_json, page, "\n".join(f"{image_line(record)}\t{record['filename']}" for record in page["data"]))
    if not as_json and page["next_cursor"]:
        click.echo(f"more: --cursor {page['next_cursor']} (or --all)", err=True)


@images.command("get")
@click.argument("image_id")
@click.option("--variant", type=VariantParams(), help="Print the URL of this variant, e.g. w=640,fm=webp.")
@remote_command
def get(image_id, variant, client, as_json):
    """Show one image record, one `field<TAB>value` per line (or a variant's URL)."""
    record = client.get_image(image_id)
    if variant is not None:
        url = f"{record['url']}?{variant.query()}"
        emit(as_json, {"url": url}, url)
        return
    lines = [f"{key}\t{'' if value is None else value}" for key, value in record.items() if not isinstance(value, dict)]
    emit(as_json, record, "\n".join(lines))


def _update(client, as_json, image_id, changes):
    record = client.update_image(image_id, changes)
    emit(as_json, record, image_line(record))


@images.command("update")
@click.argument("image_id")
@click.option("--visibility", type=VISIBILITY, help="Make the image public or private.")
@click.option("--ttl", type=Ttl(), metavar="TTL", help="Expire after 3600, 90m, 12h, 7d, 2w or 1y from now; `permanent` removes the expiry.")
@click.option("--permanent", is_flag=True, help="Remove any expiry (same as --ttl permanent).")
@click.option("--alias", metavar="@NAME", help="Give the image this alias (moved here from any image that holds it).")
@click.option("--no-alias", is_flag=True, help="Drop the image's alias.")
@click.option("--filename", help="Rename the image (a name another image holds gets a short suffix).")
@remote_command
def update(image_id, visibility, ttl, permanent, alias, no_alias, filename, client, as_json):
    """Change visibility, expiry, alias or filename; the URL never changes."""
    if ttl is not None and permanent:
        raise click.UsageError("--ttl and --permanent cannot be used together")
    if alias and no_alias:
        raise click.UsageError("--alias and --no-alias cannot be used together")
    changes = {"visibility": visibility, "filename": filename, "alias": alias}
    changes = {key: value for key, value in changes.items() if value is not None}
    if no_alias:
        changes["alias"] = None
    changes.update(_ttl_change(PERMANENT if permanent else ttl))
    _update(client, as_json, image_id, changes)


def _ttl_change(ttl):
    """The PATCH fields for a --ttl value: seconds, `permanent`, or nothing when not given."""
    if ttl is None:
        return {}
    return {"permanent": True} if ttl == PERMANENT else {"ttl_seconds": ttl}


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
@click.argument("ttl", type=Ttl(), metavar="TTL")
@remote_command
def set_ttl(image_id, ttl, client, as_json):
    """Expire after TTL from now (3600, 90m, 12h, 7d, 2w, 1y), or `permanent` to remove the expiry."""
    _update(client, as_json, image_id, _ttl_change(ttl))


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


@images.command("download")
@click.argument("image_id")
@click.option("-o", "--output", metavar="FILE|-", help="Where to write the bytes (default: the image's filename, here); - for stdout.")
@remote_command
def download(image_id, output, client, as_json):
    """Download an image's bytes through its serving URL (private ones too, with the key)."""
    record = client.get_image(image_id)
    target = output or record["filename"]
    if target == "-":
        if as_json:
            raise click.UsageError("--json and -o - both want standard output")
        if sys.stdout.isatty():
            raise click.UsageError("refusing to write image bytes to a terminal: use -o FILE or a pipe")
        client.download(record["url"], click.get_binary_stream("stdout"))
        return
    directory = os.path.dirname(os.path.abspath(target))
    # Written beside the target and renamed over it: a failed download leaves no partial file.
    fd, tmp = tempfile.mkstemp(prefix=".goodeye-download-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out, _progress(record["size_bytes"], f"downloading {record['filename']}", as_json) as progress:
            written = client.download(record["url"], out, progress=progress)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    emit(as_json, {"id": record["id"], "path": target, "size_bytes": written}, f"{target}\t{written}")


@images.command("open")
@click.argument("image_id")
@click.option("--browser", is_flag=True, help="Also open the URL with the system's browser.")
@click.option("--expires-in", type=Ttl(), default="3600", show_default=True, metavar="DURATION",
              help="How long the signed URL of a private image works (at most 7 days).")
@remote_command
def open_image(image_id, browser, expires_in, client, as_json):
    """Print a URL that shows the image to anyone (a signed one for a private image); with --browser, open it too."""
    _check_signed_lifetime(expires_in)
    record = client.get_image(image_id)
    url = record["url"]
    if record["visibility"] == "private":
        url = client.sign_url(image_id, expires_in=expires_in)["url"]
    if browser:
        click.launch(url)
    emit(as_json, {"id": record["id"], "url": url}, url)


@images.command("replace")
@click.argument("image_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--strip-metadata", is_flag=True, help="Store it without EXIF/GPS, XMP, comments (pixels, colour profile and orientation kept).")
@remote_command
def replace(image_id, path, strip_metadata, client, as_json):
    """Put new bytes behind an image's URL: same id, URL and settings, new content."""
    record = client.replace_file(image_id, path, strip_metadata=strip_metadata)
    emit(as_json, record, f"{record['id']}\t{record['url']}\t{record['content_type']}\t{record['sha256']}")


def _check_signed_lifetime(expires_in):
    """A signed URL's --expires-in is a duration of at most 7 days."""
    if expires_in == PERMANENT or expires_in > SIGNED_URL_MAX_SECONDS:
        raise click.BadParameter("a signed URL lasts at most 7 days (604800 seconds)", param_hint="--expires-in")


@images.command("sign")
@click.argument("image_id")
@click.option("--expires-in", type=Ttl(), default="3600", show_default=True, metavar="DURATION",
              help="How long the URL works: seconds or with a unit (90m, 12h, 7d), at most 7 days.")
@click.option("--variant", type=VariantParams(), help="A variant of the image, e.g. w=640,fm=webp.")
@remote_command
def sign(image_id, expires_in, variant, client, as_json):
    """Print a signed URL that shows the image to anyone holding it, until it expires (even a private image)."""
    _check_signed_lifetime(expires_in)
    fields = {"w": variant.w, "h": variant.h, "fit": variant.fit, "fm": variant.fm} if variant else {}
    # The server's defaults stay implicit, so the signed URL names what the user named.
    fields = {name: value for name, value in fields.items() if value is not None and (name, value) != ("fit", "scale-down")}
    signed = client.sign_url(image_id, expires_in=expires_in, variant=fields)
    emit(as_json, signed, signed["url"])


@images.command("rotate-signing-key")
@remote_command
def rotate_signing_key(client, as_json):
    """Give the project a new signing secret: every signed URL issued before stops working."""
    rotated = client.rotate_signing_key()
    emit(as_json, rotated, f"rotated at {rotated['rotated_at']}")


@images.command("similar")
@click.argument("target", metavar="ID|FILE")
@click.option("--max-distance", type=click.IntRange(0, 16), help="Most pHash bits a match may differ by, 0-16 (server default 8).")
@click.option("--limit", type=click.IntRange(1, 100), help="Most matches, 1-100 (server default 20).")
@remote_command
def similar(target, max_distance, limit, client, as_json):
    """Your images that look like image ID or a local FILE (not uploaded), nearest first: distance, id, url."""
    if os.path.isfile(target):
        page = client.similar_to_file(target, max_distance=max_distance, limit=limit)
    else:
        page = client.similar_images(target, max_distance=max_distance, limit=limit)
    lines = [f"{record['distance']}\t{record['id']}\t{record['url']}" for record in page["data"]]
    emit(as_json, page, "\n".join(lines) or "no similar images")
