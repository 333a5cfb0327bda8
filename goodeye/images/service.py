"""Image records: create, list, get, update, delete (README "The image API")."""

import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from peewee import IntegrityError

from goodeye import metrics
from goodeye.db import database, for_update, retry_on_deadlock
from goodeye.errors import ImageNotFound, InvalidRequest, QuotaExceeded
from goodeye.ids import base62, new_id
from goodeye.images.blobs import acquire_blob, reclaim_if_unreferenced, reclaim_later, release_blobs
from goodeye.images.metadata import strip_metadata
from goodeye.images.validation import validate_image
from goodeye.models import Image, Project, utcnow
from goodeye.projects.quota import check_room, release_usage, take_usage
from goodeye.serving import signing
from goodeye.serving.nodes import announce
from goodeye.similar.bands import phash_columns
from goodeye.similar.blocklist import check_not_blocked

VISIBILITIES = ("private", "public")
SOURCES = ("upload", "generated")
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


def clean_filename(value, ext):
    """A safe, readable filename: the base name with unsafe characters replaced; generated when empty."""
    if value is not None and not isinstance(value, str):
        raise InvalidRequest("filename must be a string.")
    name = FILENAME_UNSAFE.sub("-", os.path.basename((value or "").replace("\\", "/"))).strip(".-")[:200]
    return name or f"image-{base62(10)}.{ext}"


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
    # No node can have a copy of a new image: nothing to announce.
    _relink(ctx, image)


def sync_link(ctx, image):
    """After a committed change to an image: its links as the image is now, on every node before this returns."""
    _relink(ctx, image)
    announce(ctx, [image.token])


def sync_links_of(ctx, tokens):
    """sync_link for the images of these tokens as they are now: after a change made in bulk (their Last-Modified moved)."""
    if ctx.links is None or not tokens:
        return
    for image in Image.select().where(Image.token.in_(list(tokens))):
        _relink(ctx, image)
    announce(ctx, tokens)


def _relink(ctx, image):
    """Give a public, unexpired image its fast-path link, take it from any other; keep a signed link current."""
    if ctx.links is None:
        return
    live = image.expires_at is None or image.expires_at > utcnow()
    if image.visibility == "public" and live:
        ctx.links.add(image)
    else:
        ctx.links.remove(image.token, signed=False)
    if ctx.links.has(image.token, signed=True):
        if live:
            ctx.links.add(image, signed=True)
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
    """An alias names one image: take it from whichever image holds it now; the tokens of those that held it."""
    holder = (Image.project == project_id) & (Image.alias == alias)
    tokens = [row.token for row in Image.select(Image.token).where(holder)]
    Image.update(alias=None, updated_at=now).where(holder).execute()
    return tokens


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


def list_images(project_id, query):
    """A page of the project's unexpired images, newest first, as an ImageListQuery asks: (images, pk of the last or None)."""
    rows = _live(Image.select().where(Image.project == project_id), utcnow())
    if query.source:
        rows = rows.where(Image.source == query.source)
    if query.visibility:
        rows = rows.where(Image.visibility == query.visibility)
    if query.after_pk is not None:
        rows = rows.where(Image.pk < query.after_pk)
    # Keyset pagination on the auto-increment key: images added while a
    # client pages through land before its first page, never inside it.
    limit = query.limit
    rows = list(rows.order_by(Image.pk.desc()).limit(limit + 1))
    return rows[:limit], rows[limit - 1].pk if len(rows) > limit else None


def update_image(ctx, project_id, image_id, changes):
    """Apply an ImageChanges (visibility, expiry, alias, filename) to the project's image."""
    updates = {}
    if changes.visibility is not None:
        updates["visibility"] = changes.visibility
    now = utcnow()
    if changes.change_expiry:
        updates["expires_at"] = None if changes.ttl_seconds is None else now + timedelta(seconds=changes.ttl_seconds)
    if changes.filename is not None:
        updates["filename"] = changes.filename
    image, released = _apply_update(project_id, image_id, updates, changes.change_alias, changes.alias, now)
    sync_links_of(ctx, [image.token, *released])
    return image


@retry_on_deadlock
def _apply_update(project_id, image_id, updates, alias_changes, alias, now):
    with database.atomic():
        if alias_changes:
            _lock_aliases(project_id)
        image = get_image(project_id, image_id)
        released = []
        if alias_changes:
            if alias and alias != image.alias:
                released = _release_alias(project_id, alias, now)
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
            return image, released
        for _attempt in range(5):
            try:
                image.save(only=columns)
                return image, released
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
        """After the commit: drop the links (on every node), then the bytes no image references any more."""
        if ctx.links is not None:
            for token in self.tokens:
                ctx.links.remove(token)
            announce(ctx, self.tokens)
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


def sign_image_url(ctx, project_id, image_id, expires_in, variant):
    """A signed serving URL of the project's image (or a variant of it) for `expires_in` seconds: (url, expires_at)."""
    image = get_image(project_id, image_id)
    expires = int(time.time()) + expires_in
    signature = signing.compute_signature(signing.project_secret(project_id), image.token, variant, str(expires))
    if ctx.links is not None:
        # What nginx serves a kept decision of this URL from (goodeye/serving/links.py).
        ctx.links.add(image, signed=True)
    query = urlencode([*variant, ("expires", expires), ("signature", signature)])
    return f"{image_url(ctx.settings, image)}?{query}", datetime.fromtimestamp(expires, timezone.utc)
