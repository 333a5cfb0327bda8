"""Image records: create, list, get, update, delete (README "The image API")."""

import base64
import binascii
import io
import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from peewee import IntegrityError
from werkzeug.datastructures import MultiDict

from goodeye import metrics
from goodeye.db import database, for_update, retry_on_deadlock
from goodeye.errors import ImageNotFound, ImageTooLarge, InvalidRequest, QuotaExceeded
from goodeye.ids import base62, new_id
from goodeye.images.blobs import acquire_blob, reclaim_if_unreferenced, reclaim_later, release_blobs
from goodeye.images.metadata import strip_metadata
from goodeye.images.validation import validate_image
from goodeye.models import Image, Project, iso, utcnow
from goodeye.parsing import whole_number
from goodeye.projects.quota import check_room, release_usage, take_usage
from goodeye.serving import signing
from goodeye.similar.bands import phash_columns
from goodeye.similar.blocklist import check_not_blocked
from goodeye.variants.params import parse_variant_params

VISIBILITIES = ("private", "public")
SOURCES = ("upload", "generated")
ALIAS_PATTERN = re.compile(r"^@?([a-z0-9][a-z0-9_-]{0,63})\Z")
# Ten years: long enough for any real expiry, short enough for every datetime type.
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600
FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_LIST_LIMIT = 100
# How long replaced bytes outlive their last reference, for requests decided just before.
REPLACED_BYTES_GRACE_SECONDS = 5


# The columns that describe an image's bytes; ImageInfo has the same names.
BYTES_FIELDS = ("sha256", "content_type", "ext", "size_bytes", "width", "height", "frames", "phash")


def bytes_fields(source):
    """The byte-describing columns of an ImageInfo or Image (with the pHash's index columns), as keyword arguments."""
    return {**{name: getattr(source, name) for name in BYTES_FIELDS}, **phash_columns(source.phash)}


@dataclass
class Placement:
    """How a new image is to be kept: visibility, expiry, filename, alias, whether to strip metadata."""

    visibility: str = "private"
    ttl_seconds: int | None = None
    filename: str | None = None
    alias: str | None = None
    strip_metadata: bool = False


def parse_visibility(value):
    """'public' or 'private', else InvalidRequest."""
    if value not in VISIBILITIES:
        raise InvalidRequest("visibility must be 'public' or 'private'.")
    return value


def parse_ttl(value):
    """A positive whole number of seconds, else InvalidRequest."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidRequest("ttl_seconds must be a positive whole number of seconds.")
    if value > MAX_TTL_SECONDS:
        raise InvalidRequest(f"ttl_seconds may be at most {MAX_TTL_SECONDS}.")
    return value


def parse_flag(value, name):
    """A boolean, else InvalidRequest."""
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be true or false.")
    return value


def parse_alias(value):
    """An alias as stored (without '@'), or None to clear; else InvalidRequest."""
    if value is None:
        return None
    match = ALIAS_PATTERN.match(value) if isinstance(value, str) else None
    if not match:
        raise InvalidRequest("alias must be '@' followed by 1-64 of a-z, 0-9, '_' and '-', starting with a letter or digit.")
    return match.group(1)


def clean_filename(value, ext):
    """A safe, readable filename: the base name with unsafe characters replaced; generated when empty."""
    if value is not None and not isinstance(value, str):
        raise InvalidRequest("filename must be a string.")
    name = FILENAME_UNSAFE.sub("-", os.path.basename((value or "").replace("\\", "/"))).strip(".-")[:200]
    return name or f"image-{base62(10)}.{ext}"


def placement_from(fields):
    """Validate the typed placement fields of an upload (the JSON body, or the form as the view typed it)."""
    ttl = fields.get("ttl_seconds")
    permanent = fields.get("permanent")
    if permanent is not None and not parse_flag(permanent, "permanent"):
        raise InvalidRequest("permanent only takes true (an image without ttl_seconds has no expiry).")
    if permanent is not None and ttl is not None:
        raise InvalidRequest("ttl_seconds and permanent cannot be used together.")
    return Placement(
        visibility=parse_visibility(fields.get("visibility", "private")),
        ttl_seconds=None if ttl is None else parse_ttl(ttl),
        filename=fields.get("filename"),
        alias=parse_alias(fields.get("alias")),
        strip_metadata=parse_flag(fields.get("strip_metadata", False), "strip_metadata"),
    )


def read_upload(stream, max_bytes):
    """The bytes of an uploaded file, or ImageTooLarge naming its whole size (read no further than the limit)."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        size = stream.seek(0, io.SEEK_END)
        raise ImageTooLarge(f"The image is {size} bytes; the limit is {max_bytes} bytes.")
    return data


def decode_base64_image(data, max_bytes):
    """The bytes of a base64 `data` field, checking its size before decoding."""
    if not isinstance(data, str) or not data:
        raise InvalidRequest("data must be a non-empty base64 string.")
    if len(data) > (max_bytes + 2) // 3 * 4 + 4:
        raise ImageTooLarge(f"The image is larger than the limit of {max_bytes} bytes.")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("data is not valid base64.") from None


def validated_bytes(ctx, data, strip):
    """The bytes to store and their ImageInfo, as for an upload; stripped of metadata when asked."""
    info = validate_image(data, ctx.image_limits)
    if strip:
        data = strip_metadata(data, info.format)
        # What is stored is what is described: size, SHA-256 and a check of the new bytes.
        info = validate_image(data, ctx.image_limits)
    # A picture the operator blocked is refused before anything of it is kept.
    check_not_blocked(info.phash)
    return data, info


def create_image(ctx, project_id, data, placement, *, source="upload", generation_params=None):
    """Validate bytes, store them and insert the record; nothing is left behind on failure."""
    data, info = validated_bytes(ctx, data, placement.strip_metadata)
    image = insert_validated(ctx, project_id, data, info, placement, source=source, generation_params=generation_params)
    record_created(ctx, image)
    return image


def insert_validated(ctx, project_id, data, info, placement, *, source, generation_params=None):
    """Store validated bytes and insert their record, in the caller's transaction if there is one.

    Call record_created once the record is committed: a link made earlier could
    outlive a transaction that rolled back.
    """
    # A read first, so an upload that cannot fit writes no bytes; take_usage decides for real.
    check_room(project_id, images=1, storage_bytes=info.size_bytes)
    try:
        return _insert_image(ctx, project_id, info, data, placement, source, generation_params)
    except QuotaExceeded:
        # Another upload took the room meanwhile: the bytes written for this one go
        # unless another image holds them.
        reclaim_if_unreferenced(ctx.storage, info.sha256)
        raise


def record_created(ctx, image):
    """What follows a committed new image: its fast-path link and its count in the metrics."""
    metrics.count_upload(image.source, image.size_bytes)
    sync_link(ctx, image)


def sync_link(ctx, image):
    """Give a public, unexpired image its fast-path link, take it from any other; keep a signed link current."""
    if ctx.links is None:
        return
    live = image.expires_at is None or image.expires_at > utcnow()
    if image.visibility == "public" and live:
        ctx.links.add(image.token, image.sha256, image.expires_at)
    else:
        ctx.links.remove(image.token, signed=False)
    if ctx.links.has(image.token, signed=True):
        if live:
            ctx.links.add(image.token, image.sha256, image.expires_at, signed=True)
        else:
            ctx.links.remove(image.token, signed=True)


@retry_on_deadlock
def _insert_image(ctx, project_id, info, data, placement, source, generation_params):
    now = utcnow()
    filename = clean_filename(placement.filename, info.ext)
    with database.atomic():
        acquire_blob(ctx.storage, info, data)
        if placement.alias:
            _lock_aliases(project_id)
            _release_alias(project_id, placement.alias, now)
        # After the blob (the order every writer takes: blob row, then project row) and
        # before the image row, whose foreign key would otherwise share-lock the project
        # row first and deadlock two uploads upgrading it.
        take_usage(project_id, images=1, storage_bytes=info.size_bytes)
        for attempt in range(5):
            try:
                return Image.create(
                    id=new_id("img"),
                    token=ctx.tokens.new_token(),
                    project=project_id,
                    **bytes_fields(info),
                    visibility=placement.visibility,
                    source=source,
                    filename=filename,
                    alias=placement.alias,
                    generation_params=json.dumps(generation_params) if generation_params else None,
                    expires_at=now + timedelta(seconds=placement.ttl_seconds) if placement.ttl_seconds else None,
                    created_at=now,
                    updated_at=now,
                )
            except IntegrityError:
                # Filenames are unique per project; a taken one gets a short suffix. A
                # failed INSERT undoes only itself (MySQL and SQLite alike), so the
                # transaction goes on without the round trips of a savepoint.
                filename = _with_suffix(filename)
        raise InvalidRequest("Could not find a free filename; choose another.")


def _with_suffix(filename):
    """The filename with a short random suffix before its extension."""
    stem, dot, ext = filename.rpartition(".")
    return f"{stem}-{base62(6)}.{ext}" if dot else f"{filename}-{base62(6)}"


def _lock_aliases(project_id):
    """Serialise alias moves within a project on its row (SQLite's write lock already does)."""
    # Two moves racing on the UNIQUE (project, alias) key otherwise deadlock or collide.
    list(for_update(Project.select(Project.id).where(Project.id == project_id)))


def _release_alias(project_id, alias, now):
    """An alias names one image: take it from whichever image holds it now."""
    Image.update(alias=None, updated_at=now).where((Image.project == project_id) & (Image.alias == alias)).execute()


def _live(query, now):
    return query.where((Image.expires_at.is_null()) | (Image.expires_at > now))


def get_image(project_id, image_id, *, lock=False):
    """An unexpired image of the project by management id, else ImageNotFound (existence masked); `lock` locks its row."""
    if not isinstance(image_id, str) or not image_id.startswith("img_") or len(image_id) > 40:
        raise ImageNotFound()
    query = _live(Image.select().where((Image.id == image_id) & (Image.project == project_id)), utcnow())
    image = (for_update(query) if lock else query).first()
    if image is None:
        raise ImageNotFound()
    return image


def encode_cursor(pk):
    """An opaque cursor for the page after the image with this pk."""
    return base64.urlsafe_b64encode(f"v1:{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor):
    """The pk a cursor points after, else InvalidRequest."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, text = raw.partition(":")
        pk = whole_number(text)
        if version != "v1" or pk is None:
            raise ValueError
        return pk
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidRequest("cursor is not valid; pass next_cursor from a previous page.") from None


def list_images(project_id, *, source=None, visibility=None, limit=20, cursor=None):
    """A page of the project's unexpired images, newest first: (images, next_cursor)."""
    if source is not None and source not in SOURCES:
        raise InvalidRequest("source must be 'upload' or 'generated'.")
    if visibility is not None:
        parse_visibility(visibility)
    if isinstance(limit, str):
        limit = whole_number(limit) or 0
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}.")
    query = _live(Image.select().where(Image.project == project_id), utcnow())
    if source:
        query = query.where(Image.source == source)
    if visibility:
        query = query.where(Image.visibility == visibility)
    if cursor:
        query = query.where(Image.pk < decode_cursor(cursor))
    # Keyset pagination on the auto-increment key: images added while a
    # client pages through land before its first page, never inside it.
    rows = list(query.order_by(Image.pk.desc()).limit(limit + 1))
    next_cursor = encode_cursor(rows[limit - 1].pk) if len(rows) > limit else None
    return rows[:limit], next_cursor


def update_image(ctx, project_id, image_id, changes):
    """Apply a PATCH body: visibility, ttl_seconds (int or null), permanent, alias, filename."""
    if not isinstance(changes, dict):
        raise InvalidRequest("The body must be a JSON object.")
    unknown = set(changes) - {"visibility", "ttl_seconds", "permanent", "alias", "filename"}
    if unknown:
        raise InvalidRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    permanent = "permanent" in changes
    if permanent and changes["permanent"] is not True:
        raise InvalidRequest("permanent only takes true (to clear the expiry).")
    if permanent and "ttl_seconds" in changes:
        raise InvalidRequest("ttl_seconds and permanent cannot be used together.")
    updates = {}
    if "visibility" in changes:
        updates["visibility"] = parse_visibility(changes["visibility"])
    now = utcnow()
    if "ttl_seconds" in changes:
        ttl = changes["ttl_seconds"]
        updates["expires_at"] = None if ttl is None else now + timedelta(seconds=parse_ttl(ttl))
    if permanent:
        updates["expires_at"] = None
    if "filename" in changes:
        if not isinstance(changes["filename"], str) or not changes["filename"].strip():
            raise InvalidRequest("filename must be a non-empty string.")
        updates["filename"] = changes["filename"]
    alias = parse_alias(changes["alias"]) if "alias" in changes else None
    image = _apply_update(project_id, image_id, updates, "alias" in changes, alias, now)
    sync_link(ctx, image)
    return image


@retry_on_deadlock
def _apply_update(project_id, image_id, updates, alias_changes, alias, now):
    with database.atomic():
        if alias_changes:
            _lock_aliases(project_id)
        image = get_image(project_id, image_id)
        if alias_changes:
            if alias and alias != image.alias:
                _release_alias(project_id, alias, now)
            updates = {**updates, "alias": alias}
        if "filename" in updates:
            updates = {**updates, "filename": clean_filename(updates["filename"], image.ext)}
        for name, value in updates.items():
            setattr(image, name, value)
        image.updated_at = now
        # Only the columns this request changes: a concurrent alias move must not be undone.
        columns = [getattr(Image, name) for name in (*updates, "updated_at")]
        if "filename" not in updates:
            image.save(only=columns)
            return image
        for _attempt in range(5):
            try:
                image.save(only=columns)
                return image
            except IntegrityError:
                # The same rule as at upload: a name another image holds gets a short suffix.
                image.filename = _with_suffix(updates["filename"])
        raise InvalidRequest("Could not find a free filename; choose another.")


def replace_image_bytes(ctx, project_id, image_id, data, strip):
    """Put new bytes behind an image's URL: validated as an upload; id, token, URL, name and placement unchanged.

    In one transaction on the locked row: the new blob's reference is taken, the
    row gets the new bytes and the old reference is released (a concurrent delete
    waits, then removes the row with its new bytes). After the commit the links are
    renamed to the new bytes; old bytes left without a reference go a few seconds
    later, so a request decided just before the swap (nginx about to open the file
    or fetch it from S3) still gets them whole.
    """
    data, info = validated_bytes(ctx, data, strip)
    try:
        image, unreferenced = _swap_bytes(ctx, project_id, image_id, info, data)
    except QuotaExceeded:
        # The bytes written for it go unless another image holds them.
        reclaim_if_unreferenced(ctx.storage, info.sha256)
        raise
    try:
        sync_link(ctx, image)
    finally:
        reclaim_later(ctx.storage, unreferenced, REPLACED_BYTES_GRACE_SECONDS)
    return image


@retry_on_deadlock
def _swap_bytes(ctx, project_id, image_id, info, data):
    now = utcnow()
    with database.atomic():
        image = get_image(project_id, image_id, lock=True)
        old_sha256 = image.sha256
        # The project's storage counts the change in bytes (a larger image may not fit).
        take_usage(project_id, images=0, storage_bytes=info.size_bytes - image.size_bytes)
        acquire_blob(ctx.storage, info, data)
        # The extension in the URL is cosmetic and stays, like the filename.
        changes = {name: value for name, value in bytes_fields(info).items() if name != "ext"}
        Image.update(**changes, updated_at=now).where(Image.pk == image.pk).execute()
        unreferenced = release_blobs(Counter([old_sha256]))
        for name, value in changes.items():
            setattr(image, name, value)
        image.updated_at = now
        return image, unreferenced


def delete_image(ctx, project_id, image_id):
    """Delete an image of the project; ImageNotFound unless this call is the one that removed it."""
    _delete_locked(project_id, image_id).finish(ctx)


@retry_on_deadlock
def _delete_locked(project_id, image_id):
    with database.atomic():
        # Read locked: the bytes released are the row's own, even when a replacement just changed them.
        removal = remove_image_rows([get_image(project_id, image_id, lock=True)], Image.project == project_id)
    if not removal.tokens:
        raise ImageNotFound()
    return removal


@dataclass
class Removal:
    """What a transaction took away: the links to drop and the blobs it left without a reference."""

    tokens: list = field(default_factory=list)
    unreferenced: list = field(default_factory=list)

    def finish(self, ctx):
        """After the commit: drop the links, then the bytes no image references any more."""
        if ctx.links is not None:
            for token in self.tokens:
                ctx.links.remove(token)
        for sha256 in self.unreferenced:
            reclaim_if_unreferenced(ctx.storage, sha256)


def remove_image_rows(images, condition=None):
    """In the caller's transaction, delete the rows of `images` (pk, token, sha256, project, size_bytes),
    release their blobs and give their projects' usage back.

    Each row's own DELETE decides: a row that another transaction removed first,
    or that no longer meets `condition`, releases nothing here. Returns a Removal
    to finish after the commit; `len(removal.tokens)` rows were removed.
    """
    removed = []
    for image in images:
        query = Image.delete().where(Image.pk == image.pk)
        if condition is not None:
            query = query.where(condition)
        if query.execute():
            removed.append(image)
    unreferenced = release_blobs(Counter(image.sha256 for image in removed))
    # The project row last, as an upload takes it after the blob row: the other order deadlocks
    # a delete against an upload of the same bytes.
    for project_id in {image.project_id for image in removed}:
        mine = [image for image in removed if image.project_id == project_id]
        release_usage(project_id, sum(image.size_bytes for image in mine), images=len(mine))
    return Removal([image.token for image in removed], unreferenced)


def remove_images(ctx, images, condition=None):
    """Remove images: rows and references in one transaction, then links and unshared bytes; how many this call removed."""
    removal = _remove_rows(images, condition)
    removal.finish(ctx)
    return len(removal.tokens)


@retry_on_deadlock
def _remove_rows(images, condition):
    with database.atomic():
        return remove_image_rows(images, condition)


def swap_image_bytes(image_pk, fresh, **fields):
    """In the caller's transaction, give an image the bytes of `fresh` (a just-stored image, whose row goes).

    The fresh row's blob reference passes to the image with the bytes; the image's
    old reference is released. ImageNotFound when either image is gone. Returns the
    Removal to finish after the commit (the fresh row's link, the old bytes).
    """
    old = for_update(Image.select(Image.pk, Image.sha256, Image.project, Image.size_bytes).where(Image.pk == image_pk)).first()
    # A fresh image deleted meanwhile took its reference with it: nothing to pass on.
    if old is None or not Image.delete().where(Image.pk == fresh.pk).execute():
        raise ImageNotFound()
    Image.update(**bytes_fields(fresh), **fields, updated_at=utcnow()).where(Image.pk == image_pk).execute()
    unreferenced = release_blobs(Counter([old.sha256]))
    # The project keeps one image, of the fresh size (which the fresh image's insert counted);
    # its row last, as everywhere (remove_image_rows).
    release_usage(old.project_id, old.size_bytes)
    return Removal([fresh.token], unreferenced)


def update_image_rows(pks, **fields):
    """Set plain columns (live scope, times) of the images with these pks; bytes change only by swap_image_bytes."""
    if pks:
        Image.update(**fields).where(Image.pk.in_(list(pks))).execute()


def leave_live_scope(scope_id):
    """In the caller's transaction, take every image still in a live scope out of it; how many."""
    return Image.update(live_scope_id=None, updated_at=utcnow()).where(Image.live_scope_id == scope_id).execute()


def image_url(settings, image):
    """The stable serving URL of an image."""
    return f"{settings.base_url}/v1/i/{image.token}.{image.ext}"


def sign_image_url(ctx, project_id, image_id, body):
    """A signed serving URL of the project's image (or a variant of it): {"url", "expires_at"}."""
    expires_in, variant = signing.parse_sign_request(body)
    # The serving URL's own rules for variant values (sizes, fit with both sides, formats).
    parse_variant_params(MultiDict(variant), ctx.settings.variant_sizes)
    image = get_image(project_id, image_id)
    expires = int(time.time()) + expires_in
    signature = signing.compute_signature(signing.project_secret(project_id), image.token, variant, str(expires))
    if ctx.links is not None:
        # What nginx serves a kept decision of this URL from (goodeye/serving/links.py).
        ctx.links.add(image.token, image.sha256, image.expires_at, signed=True)
    query = urlencode([*variant, ("expires", expires), ("signature", signature)])
    return {"url": f"{image_url(ctx.settings, image)}?{query}", "expires_at": iso(datetime.fromtimestamp(expires, timezone.utc))}


def image_record(settings, image):
    """The `/v1` JSON record of an image."""
    return {
        "id": image.id,
        "token": image.token,
        "url": image_url(settings, image),
        "visibility": image.visibility,
        "source": image.source,
        "content_type": image.content_type,
        "size_bytes": image.size_bytes,
        "width": image.width,
        "height": image.height,
        "sha256": image.sha256,
        "filename": image.filename,
        "alias": f"@{image.alias}" if image.alias else None,
        "expires_at": iso(image.expires_at),
        "created_at": iso(image.created_at),
        "updated_at": iso(image.updated_at),
        "generation": json.loads(image.generation_params) if image.generation_params else None,
    }
