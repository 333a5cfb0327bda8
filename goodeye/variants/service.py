"""Find or render an image's variant: once per (original's bytes, render key) across every process and node.

The first request of a variant inserts a claim row under the UNIQUE key
(source sha256, render key); concurrent requests of the same variant find the
claim and wait for its blob (on any node, since the row is in the database).
The winner renders in one of the node's render slots, stores the bytes as a
blob with one reference, and fills the row in. A failed render deletes its
claim, so the next request tries again.
"""

import hashlib
import io
import time
from dataclasses import dataclass, replace

from peewee import IntegrityError, fn

from goodeye import metrics
from goodeye.db import Prepared, database, for_update, retry_on_deadlock
from goodeye.errors import ImageNotFound, RateLimited, ServiceUnavailable
from goodeye.images.blobs import acquire_blob, delete_variant_rows, reclaim_if_unreferenced, release_blobs
from goodeye.live.service import stale_claim_age
from goodeye.models import Blob, Image, Variant, utcnow
from goodeye.variants.params import accepted_formats
from goodeye.variants.render import render

RENDER_LIMIT_NAMESPACE = "variant-render"
POLL_SECONDS = 0.05
# Concurrent requests of one variant wait this long for its render (well inside nginx's upstream timeout).
CLAIM_WAIT_SECONDS = 30
RETRY_SOON = {"Retry-After": "2"}


@dataclass(frozen=True)
class _BlobInfo:
    sha256: str
    size_bytes: int
    content_type: str


class _ClaimLost(Exception):
    """The claim row went away (its original was reclaimed) while the render ran."""


class _SourceGone(Exception):
    """The bytes rendered from lost their last reference (replaced or deleted) before the render was stored."""


def variant_of(ctx, image, spec, *, accept, anonymous_ip):
    """`image` as its variant `spec` asks (same record; the variant's sha256, type and size), rendering it on first request.

    `anonymous_ip` is the address whose per-IP limit a new render counts against;
    None when none does (a key, a signed URL, a live URL's MISS).
    """
    render_spec = spec.resolve(image.content_type, accepted_formats(accept))
    if render_spec.is_identity:
        return image
    row = find_variant(image.sha256, render_spec.key)
    if row is None:
        row = _render_once(ctx, image, render_spec, anonymous_ip)
    sha256, content_type, size_bytes = row
    return replace(image, sha256=sha256, content_type=content_type, size_bytes=size_bytes)


_RENDERED_VARIANT = Prepared(
    lambda p: Variant.select(Variant.variant_sha256, Variant.content_type, Variant.size_bytes).where(
        (Variant.source_sha256 == p.source_sha256) & (Variant.params == p.key) & Variant.variant_sha256.is_null(False)
    )
)


def find_variant(source_sha256, key):
    """(sha256, content type, size) of a rendered variant, or None."""
    return _RENDERED_VARIANT.one(source_sha256=source_sha256, key=key)


def _render_once(ctx, image, spec, anonymous_ip):
    deadline = time.monotonic() + CLAIM_WAIT_SECONDS
    while True:
        claim = _claim(image.sha256, spec.key)
        if claim is not None:
            break
        row = find_variant(image.sha256, spec.key)
        if row is not None:
            return row
        if time.monotonic() > deadline:
            raise ServiceUnavailable("This variant is still being rendered; retry shortly.", headers=RETRY_SOON)
        Variant.delete().where(
            (Variant.source_sha256 == image.sha256)
            & (Variant.params == spec.key)
            & Variant.variant_sha256.is_null()
            & (Variant.claimed_at < utcnow() - stale_claim_age(ctx.settings))
        ).execute()
        time.sleep(POLL_SECONDS)
    try:
        if anonymous_ip is not None:
            _count_render(ctx, anonymous_ip)
        with ctx.render_slots.hold():
            rendered = _render_original(ctx, image, spec)
        metrics.count_variant_render(rendered.content_type.partition("/")[2])
        return _store(ctx, image, claim, rendered)
    except BaseException:
        Variant.delete().where((Variant.pk == claim) & Variant.variant_sha256.is_null()).execute()
        raise


@retry_on_deadlock
def _claim(source_sha256, key):
    try:
        with database.atomic():
            return Variant.insert(source_sha256=source_sha256, params=key, claimed_at=utcnow()).execute()
    except IntegrityError:
        return None


def _count_render(ctx, ip):
    limit = ctx.settings.variant_render_limit
    state = ctx.limiter.hit(limit, RENDER_LIMIT_NAMESPACE, ip)
    if not state.allowed:
        headers = {**state.headers(), "Retry-After": str(max(1, state.reset_seconds))}
        raise RateLimited(f"At most {limit} new variants per client address.", code="IP_RATE_LIMIT_EXCEEDED", headers=headers)


def _render_original(ctx, image, spec):
    try:
        source = ctx.storage.open(image.sha256)
    except FileNotFoundError:
        raise ImageNotFound() from None
    with source:
        if not source.seekable():
            # Pillow seeks while decoding; an S3 body streams forward only.
            source = io.BytesIO(source.read())
        return render(source, spec, ctx.settings.max_pixels)


@retry_on_deadlock
def _store(ctx, image, claim, rendered):
    info = _BlobInfo(hashlib.sha256(rendered.data).hexdigest(), len(rendered.data), rendered.content_type)
    try:
        with database.atomic():
            # The source's blob row first, locked, as a release takes it (then the variants,
            # then their blobs): a release that committed before has deleted it, and every
            # variant of those bytes with it, so a row filled now would be reclaimed by
            # nothing (a claim taken after a replacement swapped the bytes); a release
            # that comes after waits, then deletes this variant with its source.
            if not for_update(Blob.select(Blob.sha256).where(Blob.sha256 == image.sha256)).exists():
                raise _SourceGone()
            filled = (
                Variant.update(
                    variant_sha256=info.sha256,
                    content_type=info.content_type,
                    size_bytes=info.size_bytes,
                    width=rendered.width,
                    height=rendered.height,
                    created_at=utcnow(),
                )
                .where((Variant.pk == claim) & Variant.variant_sha256.is_null())
                .execute()
            )
            if not filled:
                raise _ClaimLost()
            if info.sha256 != image.sha256:
                # The source's own bytes are stored and held already (images/blobs.py: HOLDS_A_REFERENCE).
                acquire_blob(ctx.storage, info, rendered.data)
    except (_ClaimLost, _SourceGone) as lost:
        # Nothing references the render: bytes written by an attempt that a deadlock undid go too.
        reclaim_if_unreferenced(ctx.storage, info.sha256)
        if isinstance(lost, _SourceGone) and Image.select().where(Image.token == image.token).exists():
            # The image has other bytes now: asked again, it renders from those.
            raise ServiceUnavailable("The image changed while this variant was rendered; retry.", headers=RETRY_SOON) from None
        raise ImageNotFound() from None
    return info.sha256, info.content_type, info.size_bytes


def purge_variants(ctx, image_id=None):
    """Delete rendered variants (of one image's bytes, or all) and their blobs and links; how many went."""
    condition = tokens = None
    if image_id is not None:
        image = Image.get_or_none(Image.id == image_id)
        if image is None:
            raise ImageNotFound(f"No image {image_id!r}.")
        condition = Variant.source_sha256 == image.sha256
        tokens = [row[0] for row in Image.select(Image.token).where(Image.sha256 == image.sha256).tuples()]
    purged, unreferenced = _delete_variants(condition)
    if ctx.links is not None:
        ctx.links.remove_variants(tokens)
    for sha256 in unreferenced:
        reclaim_if_unreferenced(ctx.storage, sha256)
    return purged


@retry_on_deadlock
def _delete_variants(condition):
    with database.atomic():
        held = delete_variant_rows(condition)
        return sum(held.values()), release_blobs(held)


def variant_stats():
    """How many variants are stored, how many are being rendered, and their bytes."""
    stored = Variant.variant_sha256.is_null(False)
    return {
        "variants": Variant.select().where(stored).count(),
        "rendering": Variant.select().where(~stored).count(),
        "bytes": int(Variant.select(fn.COALESCE(fn.SUM(Variant.size_bytes), 0)).scalar() or 0),
    }
