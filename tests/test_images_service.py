"""The image service and its request readers called directly on a SQLite app: the rules of the image API without HTTP."""

import base64
import dataclasses
import hashlib
import io
import json
import os
from datetime import timedelta

import pytest
from PIL import Image as Picture
from werkzeug.datastructures import MultiDict

from goodeye import create_app
from goodeye.config import load_settings
from goodeye.errors import ImageNotFound, ImageTooLarge, InvalidImage, InvalidRequest, QuotaExceeded, UnsupportedImageType
from goodeye.identity.service import create_org, create_project
from goodeye.images import requests as wire
from goodeye.images import service
from goodeye.images.requests import ImageChanges, ImageListQuery
from goodeye.images.service import Placement
from goodeye.models import Blob, Image, Project, utcnow
from goodeye.projects.quota import set_quotas
from tests.factories import SECRET, image_with_metadata


@pytest.fixture()
def project_id(ctx):
    """A fresh project's id."""
    create_org("acme")
    return create_project("acme/site")[0].id


@pytest.fixture()
def other_project_id(ctx, project_id):
    """A second project, in the same org."""
    return create_project("acme/other")[0].id


@pytest.fixture(scope="module")
def wire_app(tmp_path_factory):
    """An app to read requests in: the readers need a request context, not a database."""
    return create_app(load_settings({"GOODEYE_DATA_DIR": str(tmp_path_factory.mktemp("wire"))}))


@pytest.fixture()
def reclaims(monkeypatch):
    """The delayed reclaims replace_image_bytes asks for, recorded instead of run on a timer: [(sha256s, delay)]."""
    asked = []
    monkeypatch.setattr(service, "reclaim_later", lambda storage, sha256s, delay: asked.append((list(sha256s), delay)))
    return asked


def picture(fmt="PNG", size=(8, 6), color=(200, 30, 30)):
    """A small image encoded in memory; different colours give different bytes."""
    buffer = io.BytesIO()
    Picture.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def upload(ctx, project_id, data=None, **placement):
    """create_image with a Placement made of the keyword arguments."""
    return service.create_image(ctx, project_id, data if data is not None else picture(), Placement(**placement))


def reloaded(image):
    """The image's row as stored now, or None when it is gone."""
    return Image.get_or_none(Image.pk == image.pk)


def usage(project_id):
    """The project's usage counters: (image_count, storage_bytes)."""
    project = Project.get_by_id(project_id)
    return project.image_count, project.storage_bytes


def refs(sha256):
    """The reference count of a blob's row, None without a row."""
    blob = Blob.get_or_none(Blob.sha256 == sha256)
    return None if blob is None else blob.refs


def stored_blobs(ctx):
    """The SHA-256 of every blob in the store, sorted."""
    return sorted(sha256 for sha256, _modified in ctx.storage.iter_blobs())


def link_names(ctx, token, signed=False):
    """The names of the token's links in one namespace (they carry the bytes' hash, the last change and the expiry)."""
    directory = os.path.join(ctx.links.root, "signed" if signed else "", token[:2])
    try:
        return sorted(name for name in os.listdir(directory) if name.split("~")[0] == token)
    except FileNotFoundError:
        return []


def link_name(ctx, image, signed=False):
    """The name the image's link has when it matches the image as it is now."""
    return os.path.basename(ctx.links.relative_path(image, signed))


def expire(image):
    """Move the image's expiry a minute into the past, as time passing would; the row as stored."""
    Image.update(expires_at=utcnow() - timedelta(minutes=1)).where(Image.pk == image.pk).execute()
    return reloaded(image)


def refused(error_type, slug, status, call, *args, **kwargs):
    """Call and return the error it raises, checking its type, slug and status."""
    with pytest.raises(error_type) as caught:
        call(*args, **kwargs)
    assert (caught.value.slug, caught.value.status) == (slug, status)
    return caught.value


def row_values(image):
    """Every column of a stored image, to compare before and after a refused change."""
    return dict(reloaded(image).__data__)


# --- upload -------------------------------------------------------------------


def test_an_upload_stores_the_row_the_blob_and_the_usage_and_links_only_public_images(ctx, project_id):
    data = picture(size=(40, 30))
    image = upload(ctx, project_id, data, filename="hero.png")
    row = reloaded(image)
    assert row.id.startswith("img_") and len(row.token) == 32 and row.id not in row.token
    assert (row.content_type, row.ext, row.width, row.height, row.frames) == ("image/png", "png", 40, 30, 1)
    assert (row.size_bytes, row.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (row.visibility, row.source, row.filename, row.alias, row.expires_at) == ("private", "upload", "hero.png", None, None)
    assert row.created_at == row.updated_at
    with ctx.storage.open(row.sha256) as blob:
        assert blob.read() == data
    assert refs(row.sha256) == 1 and usage(project_id) == (1, len(data))
    assert service.image_url(ctx.settings, row) == f"{ctx.settings.base_url}/v1/i/{row.token}.png"
    assert not ctx.links.has(row.token) and not ctx.links.has(row.token, signed=True)
    public = upload(ctx, project_id, picture(color=(1, 1, 1)), visibility="public")
    assert link_names(ctx, public.token) == [link_name(ctx, public)] and not ctx.links.has(public.token, signed=True)


def test_each_accepted_format_is_stored_byte_identical(ctx, project_id):
    for fmt, content_type, ext in (("PNG", "image/png", "png"), ("JPEG", "image/jpeg", "jpg"),
                                   ("WEBP", "image/webp", "webp"), ("GIF", "image/gif", "gif")):
        data = picture(fmt)
        image = upload(ctx, project_id, data)
        assert (image.content_type, image.ext) == (content_type, ext), fmt
        with ctx.storage.open(image.sha256) as blob:
            assert blob.read() == data, fmt


NOT_ACCEPTED = [
    (b"", UnsupportedImageType, "unsupported_image_type", 415),
    (b"just some text", UnsupportedImageType, "unsupported_image_type", 415),
    (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', UnsupportedImageType, "unsupported_image_type", 415),
    (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", UnsupportedImageType, "unsupported_image_type", 415),
    (b"GIF89a nope", InvalidImage, "invalid_image", 422),
    (picture(size=(300, 300))[:60], InvalidImage, "invalid_image", 422),
]


def test_bytes_that_are_not_an_accepted_image_leave_nothing(ctx, project_id):
    for data, error_type, slug, status in NOT_ACCEPTED:
        refused(error_type, slug, status, upload, ctx, project_id, data)
        assert (Image.select().count(), Blob.select().count(), stored_blobs(ctx), usage(project_id)) == (0, 0, [], (0, 0))


def test_an_image_over_the_byte_limit_is_refused_naming_both_sizes(ctx, project_id):
    data = picture(size=(64, 64))
    ctx.image_limits = dataclasses.replace(ctx.image_limits, max_bytes=len(data) - 1)
    error = refused(ImageTooLarge, "image_too_large", 413, upload, ctx, project_id, data)
    assert error.message == f"The image is {len(data)} bytes; the limit is {len(data) - 1} bytes."
    assert stored_blobs(ctx) == [] and Image.select().count() == 0


def test_strip_metadata_stores_and_describes_the_stripped_bytes(ctx, project_id):
    original = image_with_metadata("JPEG")
    image = upload(ctx, project_id, original, strip_metadata=True)
    with ctx.storage.open(image.sha256) as blob:
        kept = blob.read()
    assert SECRET in original and SECRET not in kept and len(kept) < len(original)
    assert (image.sha256, image.size_bytes) == (hashlib.sha256(kept).hexdigest(), len(kept))
    assert usage(project_id) == (1, len(kept))


def test_identical_bytes_are_stored_once_and_kept_while_any_image_holds_them(ctx, project_id, other_project_id):
    data = picture()
    first = upload(ctx, project_id, data, visibility="public")
    second = upload(ctx, other_project_id, data, visibility="public")
    assert first.sha256 == second.sha256 and refs(first.sha256) == 2 and stored_blobs(ctx) == [first.sha256]
    service.delete_image(ctx, project_id, first.id)
    assert refs(first.sha256) == 1 and ctx.storage.exists(first.sha256) and usage(project_id) == (0, 0)
    assert not ctx.links.has(first.token) and link_names(ctx, second.token) == [link_name(ctx, second)]
    service.delete_image(ctx, other_project_id, second.id)
    assert refs(first.sha256) is None and not ctx.storage.exists(first.sha256)


def test_filenames_are_cleaned_to_a_base_name_of_safe_characters_or_generated(ctx, project_id):
    cleaned = {
        "../../etc/pa ss\r\nX-Injected: 1.png": "pa-ss-X-Injected-1.png",
        "C:\\Users\\jane\\holiday photo.jpg": "holiday-photo.jpg",
        ".hidden.png": "hidden.png",
        "logo.png": "logo.png",
    }
    kept = {sent: upload(ctx, project_id, picture(color=(n, 0, 0)), filename=sent).filename for n, sent in enumerate(cleaned)}
    assert kept == cleaned
    for n, sent in enumerate([None, "", "../..", "///"]):
        # Nothing usable left: a generated name with the real extension.
        filename = upload(ctx, project_id, picture("GIF", color=(0, n, 0)), filename=sent).filename
        assert filename.startswith("image-") and filename.endswith(".gif") and len(filename) == len("image-xxxxxxxxxx.gif"), sent


def test_a_taken_filename_gets_a_suffix_before_its_extension(ctx, project_id, other_project_id):
    first = upload(ctx, project_id, picture(color=(1, 2, 3)), filename="logo.png")
    second = upload(ctx, project_id, picture(color=(4, 5, 6)), filename="logo.png")
    elsewhere = upload(ctx, other_project_id, picture(color=(7, 8, 9)), filename="logo.png")
    assert first.filename == "logo.png" and elsewhere.filename == "logo.png"
    stem, ext = second.filename.rsplit(".", 1)
    assert stem.startswith("logo-") and len(stem) == len("logo-") + 6 and ext == "png"
    assert usage(project_id) == (2, first.size_bytes + second.size_bytes)


def test_a_ttl_sets_the_expiry_from_the_upload_and_names_the_link(ctx, project_id):
    image = upload(ctx, project_id, visibility="public", ttl_seconds=120)
    assert image.expires_at - image.created_at == timedelta(seconds=120)
    assert reloaded(image).expires_at == image.expires_at
    assert link_names(ctx, image.token) == [link_name(ctx, image)] and link_name(ctx, image).count("~") == 3


def test_an_upload_with_an_alias_takes_it_from_the_image_that_held_it(ctx, project_id, other_project_id):
    first = upload(ctx, project_id, picture(color=(1, 1, 1)), alias="hero")
    elsewhere = upload(ctx, other_project_id, picture(color=(2, 2, 2)), alias="hero")
    second = upload(ctx, project_id, picture(color=(3, 3, 3)), alias="hero")
    assert (reloaded(first).alias, reloaded(second).alias, reloaded(elsewhere).alias) == (None, "hero", "hero")
    assert reloaded(first).updated_at == second.created_at


# --- quotas ---------------------------------------------------------------------


def test_an_upload_past_the_image_or_storage_quota_stores_nothing(ctx, project_id):
    kept = upload(ctx, project_id, picture(color=(1, 1, 1)))
    set_quotas(project_id, max_images=1)
    error = refused(QuotaExceeded, "quota_exceeded", 403, upload, ctx, project_id, picture(color=(2, 2, 2)))
    assert error.message == "This project may keep at most 1 images; it keeps 1."
    set_quotas(project_id, max_images=None, max_storage_bytes=kept.size_bytes + 10)
    data = picture(color=(3, 3, 3))
    error = refused(QuotaExceeded, "quota_exceeded", 403, upload, ctx, project_id, data)
    assert error.message == (f"This project may keep at most {kept.size_bytes + 10} bytes; it keeps {kept.size_bytes} "
                             f"and this needs {len(data)} more.")
    assert stored_blobs(ctx) == [kept.sha256] and Image.select().count() == 1 and refs(kept.sha256) == 1
    assert usage(project_id) == (1, kept.size_bytes)


def test_bytes_written_for_an_upload_that_loses_the_race_for_room_are_reclaimed(ctx, project_id, monkeypatch):
    # The read-only check passes; another upload takes the last room before this one's counted take.
    monkeypatch.setattr(service, "check_room", lambda *args, **kwargs: None)
    set_quotas(project_id, max_images=0)
    refused(QuotaExceeded, "quota_exceeded", 403, upload, ctx, project_id)
    assert (stored_blobs(ctx), Blob.select().count(), Image.select().count()) == ([], 0, 0)


# --- update ----------------------------------------------------------------------


def test_flipping_visibility_adds_and_removes_the_fast_path_link_and_keeps_the_url(ctx, project_id):
    image = upload(ctx, project_id)
    public = service.update_image(ctx, project_id, image.id, ImageChanges(visibility="public"))
    assert (public.token, public.sha256, reloaded(image).visibility) == (image.token, image.sha256, "public")
    assert link_names(ctx, image.token) == [link_name(ctx, public)]
    private = service.update_image(ctx, project_id, image.id, ImageChanges(visibility="private"))
    assert reloaded(image).visibility == "private" and private.token == image.token
    assert link_names(ctx, image.token) == [] and ctx.storage.exists(image.sha256)


def test_a_new_ttl_counts_from_the_update_and_clearing_it_makes_the_image_permanent(ctx, project_id):
    image = upload(ctx, project_id, visibility="public")
    old_name = link_name(ctx, image)
    updated = service.update_image(ctx, project_id, image.id, ImageChanges(change_expiry=True, ttl_seconds=30))
    row = reloaded(image)
    assert row.expires_at - row.updated_at == timedelta(seconds=30) and row.updated_at > image.created_at
    assert link_names(ctx, image.token) == [link_name(ctx, updated)] != [old_name]
    cleared = service.update_image(ctx, project_id, image.id, ImageChanges(change_expiry=True, ttl_seconds=None))
    assert cleared.expires_at is None and reloaded(image).expires_at is None
    # Unexpiring again, under a name of its own: every change renames the link.
    assert link_names(ctx, image.token) == [link_name(ctx, cleared)] != [old_name]


def test_an_update_changes_only_what_it_names(ctx, project_id):
    image = upload(ctx, project_id, visibility="public", ttl_seconds=60, alias="hero", filename="a.png")
    service.update_image(ctx, project_id, image.id, ImageChanges(filename="b.png"))
    row = reloaded(image)
    assert (row.filename, row.visibility, row.expires_at, row.alias) == ("b.png", "public", image.expires_at, "hero")
    service.update_image(ctx, project_id, image.id, ImageChanges())
    assert (reloaded(image).filename, reloaded(image).alias) == ("b.png", "hero")


def test_an_update_does_not_undo_an_alias_move_committed_while_it_ran(ctx, project_id, monkeypatch):
    image = upload(ctx, project_id, picture(color=(1, 1, 1)), alias="hero")
    other = upload(ctx, project_id, picture(color=(2, 2, 2)))
    get_image = service.get_image

    def alias_moved_meanwhile(*args, **kwargs):
        # Another request moves the alias between this update's read and its write.
        found = get_image(*args, **kwargs)
        Image.update(alias=None).where(Image.pk == image.pk).execute()
        Image.update(alias="hero").where(Image.pk == other.pk).execute()
        return found

    monkeypatch.setattr(service, "get_image", alias_moved_meanwhile)
    service.update_image(ctx, project_id, image.id, ImageChanges(visibility="public"))
    assert (reloaded(image).visibility, reloaded(image).alias, reloaded(other).alias) == ("public", None, "hero")


def test_an_alias_moves_to_the_image_that_sets_it_and_can_be_cleared(ctx, project_id):
    first = upload(ctx, project_id, picture(color=(1, 1, 1)), alias="hero")
    second = upload(ctx, project_id, picture(color=(2, 2, 2)))
    moved = service.update_image(ctx, project_id, second.id, ImageChanges(change_alias=True, alias="hero"))
    assert moved.alias == "hero" and (reloaded(first).alias, reloaded(second).alias) == (None, "hero")
    # Setting the alias an image already holds keeps it there.
    service.update_image(ctx, project_id, second.id, ImageChanges(change_alias=True, alias="hero"))
    assert reloaded(second).alias == "hero"
    service.update_image(ctx, project_id, second.id, ImageChanges(change_alias=True, alias=None))
    assert (reloaded(first).alias, reloaded(second).alias) == (None, None)


def test_a_new_filename_is_cleaned_and_gets_a_suffix_when_taken(ctx, project_id):
    upload(ctx, project_id, picture(color=(1, 1, 1)), filename="logo.png")
    image = upload(ctx, project_id, picture(color=(2, 2, 2)), filename="other.png")
    renamed = service.update_image(ctx, project_id, image.id, ImageChanges(filename="../x/logo.png"))
    stem, ext = renamed.filename.rsplit(".", 1)
    assert stem.startswith("logo-") and len(stem) == len("logo-") + 6 and ext == "png"
    assert reloaded(image).filename == renamed.filename
    service.update_image(ctx, project_id, image.id, ImageChanges(filename="my photo!.png"))
    assert reloaded(image).filename == "my-photo-.png"


def test_an_unknown_or_malformed_id_is_image_not_found_everywhere(ctx, project_id, reclaims):
    kept = upload(ctx, project_id)
    for image_id in ("nope", "img_nothingHere", "img_" + "a" * 80, kept.token, None, 42):
        refused(ImageNotFound, "image_not_found", 404, service.get_image, project_id, image_id)
        refused(ImageNotFound, "image_not_found", 404, service.update_image, ctx, project_id, image_id,
                ImageChanges(visibility="public"))
        refused(ImageNotFound, "image_not_found", 404, service.replace_image_bytes, ctx, project_id, image_id,
                picture(color=(9, 9, 9)), False)
        refused(ImageNotFound, "image_not_found", 404, service.delete_image, ctx, project_id, image_id)
    assert reloaded(kept).visibility == "private" and Image.select().count() == 1 and stored_blobs(ctx) == [kept.sha256]


def test_another_projects_image_is_not_found_and_left_alone(ctx, project_id, other_project_id, reclaims):
    image = upload(ctx, project_id, alias="hero")
    before = row_values(image)
    refused(ImageNotFound, "image_not_found", 404, service.get_image, other_project_id, image.id)
    refused(ImageNotFound, "image_not_found", 404, service.update_image, ctx, other_project_id, image.id,
            ImageChanges(visibility="public", change_alias=True, alias=None))
    refused(ImageNotFound, "image_not_found", 404, service.replace_image_bytes, ctx, other_project_id, image.id,
            picture(color=(9, 9, 9)), False)
    refused(ImageNotFound, "image_not_found", 404, service.delete_image, ctx, other_project_id, image.id)
    assert row_values(image) == before and stored_blobs(ctx) == [image.sha256] and not ctx.links.has(image.token)
    assert reclaims == []


# --- expiry ------------------------------------------------------------------------


def test_an_expired_image_is_gone_for_every_operation_and_its_links_but_counts_until_purged(ctx, project_id, reclaims):
    image = upload(ctx, project_id, visibility="public", ttl_seconds=60)
    service.sign_image_url(ctx, project_id, image.id, 600, [])
    assert ctx.links.has(image.token) and ctx.links.has(image.token, signed=True)
    expired = expire(image)
    service.sync_link(ctx, expired)
    assert not ctx.links.has(image.token) and not ctx.links.has(image.token, signed=True)
    refused(ImageNotFound, "image_not_found", 404, service.get_image, project_id, image.id)
    refused(ImageNotFound, "image_not_found", 404, service.update_image, ctx, project_id, image.id,
            ImageChanges(change_expiry=True, ttl_seconds=None))
    refused(ImageNotFound, "image_not_found", 404, service.replace_image_bytes, ctx, project_id, image.id,
            picture(color=(5, 5, 5)), False)
    refused(ImageNotFound, "image_not_found", 404, service.delete_image, ctx, project_id, image.id)
    assert service.list_images(project_id, ImageListQuery()) == ([], None)
    assert reloaded(image).expires_at == expired.expires_at and usage(project_id) == (1, image.size_bytes)
    assert stored_blobs(ctx) == [image.sha256]


def test_a_signed_link_outlives_visibility_changes_and_follows_the_expiry(ctx, project_id):
    image = upload(ctx, project_id)
    url, _expires_at = service.sign_image_url(ctx, project_id, image.id, 600, [])
    assert url.startswith(service.image_url(ctx.settings, image) + "?expires=")
    assert link_names(ctx, image.token, signed=True) == [link_name(ctx, image, signed=True)] and not ctx.links.has(image.token)
    public = service.update_image(ctx, project_id, image.id, ImageChanges(visibility="public"))
    assert link_names(ctx, image.token) == [link_name(ctx, public)] and ctx.links.has(image.token, signed=True)
    private_with_ttl = ImageChanges(visibility="private", change_expiry=True, ttl_seconds=90)
    updated = service.update_image(ctx, project_id, image.id, private_with_ttl)
    assert not ctx.links.has(image.token)
    assert link_names(ctx, image.token, signed=True) == [link_name(ctx, updated, signed=True)]


# --- delete ---------------------------------------------------------------------------


def test_a_delete_removes_the_row_the_links_the_blob_and_the_usage(ctx, project_id):
    image = upload(ctx, project_id, visibility="public")
    service.sign_image_url(ctx, project_id, image.id, 600, [])
    service.delete_image(ctx, project_id, image.id)
    assert reloaded(image) is None and refs(image.sha256) is None and not ctx.storage.exists(image.sha256)
    assert not ctx.links.has(image.token) and not ctx.links.has(image.token, signed=True)
    assert usage(project_id) == (0, 0)
    refused(ImageNotFound, "image_not_found", 404, service.delete_image, ctx, project_id, image.id)


# --- replace ------------------------------------------------------------------------------


def test_a_replacement_swaps_the_bytes_and_keeps_everything_else(ctx, project_id, reclaims):
    old_data, new_data = picture("PNG", (64, 48)), picture("JPEG", (80, 60), (30, 30, 200))
    image = upload(ctx, project_id, old_data, visibility="public", ttl_seconds=3600, alias="banner", filename="b.png")
    service.sign_image_url(ctx, project_id, image.id, 600, [])
    before = row_values(image)
    replaced = service.replace_image_bytes(ctx, project_id, image.id, new_data, False)
    row = reloaded(image)
    for name in ("id", "token", "visibility", "expires_at", "filename", "alias", "source", "created_at", "ext"):
        assert getattr(row, name) == before[name], name
    assert (row.content_type, row.width, row.height, row.size_bytes) == ("image/jpeg", 80, 60, len(new_data))
    assert row.sha256 == replaced.sha256 == hashlib.sha256(new_data).hexdigest() and row.updated_at > before["updated_at"]
    assert link_names(ctx, image.token) == [link_name(ctx, row)]
    assert link_names(ctx, image.token, signed=True) == [link_name(ctx, row, signed=True)]
    assert refs(row.sha256) == 1 and refs(image.sha256) is None and usage(project_id) == (1, len(new_data))
    # The old bytes outlive their last reference by the grace, for requests decided just before.
    assert reclaims == [([image.sha256], service.REPLACED_BYTES_GRACE_SECONDS)] and ctx.storage.exists(image.sha256)
    service.reclaim_if_unreferenced(ctx.storage, image.sha256)  # what the timer does when the grace runs out
    assert stored_blobs(ctx) == [row.sha256]


def test_replacing_bytes_another_image_shares_keeps_them_for_it(ctx, project_id, reclaims):
    shared = picture()
    first = upload(ctx, project_id, shared, visibility="public")
    second = upload(ctx, project_id, shared, visibility="public")
    service.replace_image_bytes(ctx, project_id, first.id, picture("GIF", color=(9, 9, 9)), False)
    assert refs(second.sha256) == 1 and link_names(ctx, second.token) == [link_name(ctx, second)]
    # The same bytes again: one reference taken, one released, nothing left to reclaim.
    again = service.replace_image_bytes(ctx, project_id, second.id, shared, False)
    assert again.sha256 == second.sha256 and refs(second.sha256) == 1 and ctx.storage.exists(second.sha256)
    assert [sha256s for sha256s, _delay in reclaims] == [[], []]


def test_a_refused_replacement_changes_nothing(ctx, project_id, reclaims):
    image = upload(ctx, project_id, visibility="public")
    before = row_values(image)
    for data, error_type, slug, status in NOT_ACCEPTED:
        refused(error_type, slug, status, service.replace_image_bytes, ctx, project_id, image.id, data, False)
        assert row_values(image) == before and link_names(ctx, image.token) == [link_name(ctx, image)], slug
    assert stored_blobs(ctx) == [image.sha256] and usage(project_id) == (1, image.size_bytes) and reclaims == []


def test_a_replacement_past_the_storage_quota_changes_nothing(ctx, project_id, reclaims):
    image = upload(ctx, project_id, picture(size=(8, 8)), visibility="public")
    set_quotas(project_id, max_storage_bytes=image.size_bytes)
    before = row_values(image)
    larger = picture(size=(200, 200), color=(1, 2, 3))
    error = refused(QuotaExceeded, "quota_exceeded", 403, service.replace_image_bytes, ctx, project_id, image.id, larger, False)
    assert error.message.endswith(f"and this needs {len(larger) - image.size_bytes} more.")
    assert row_values(image) == before and stored_blobs(ctx) == [image.sha256] and refs(image.sha256) == 1
    assert usage(project_id) == (1, image.size_bytes) and link_names(ctx, image.token) == [link_name(ctx, image)]
    assert reclaims == []


def test_a_project_at_its_quotas_can_still_replace_with_smaller_bytes(ctx, project_id, reclaims):
    image = upload(ctx, project_id, picture(size=(200, 200), color=(1, 2, 3)))
    set_quotas(project_id, max_images=1, max_storage_bytes=image.size_bytes)
    smaller = service.replace_image_bytes(ctx, project_id, image.id, picture(size=(8, 8)), False)
    assert smaller.size_bytes < image.size_bytes and usage(project_id) == (1, smaller.size_bytes)


def test_a_replacement_can_strip_metadata_and_keeps_what_generated_the_image(ctx, project_id, reclaims):
    params = {"prompt": "a lighthouse", "seed": 7}
    image = service.create_image(ctx, project_id, picture(), Placement(), source="generated", generation_params=params)
    replaced = service.replace_image_bytes(ctx, project_id, image.id, image_with_metadata("PNG"), True)
    with ctx.storage.open(replaced.sha256) as blob:
        kept = blob.read()
    assert SECRET not in kept and hashlib.sha256(kept).hexdigest() == replaced.sha256 == reloaded(image).sha256
    assert (reloaded(image).source, json.loads(reloaded(image).generation_params)) == ("generated", params)


# --- listing ---------------------------------------------------------------------------------


def test_listing_is_newest_first_filtered_and_of_this_project_only(ctx, project_id, other_project_id):
    public = upload(ctx, project_id, picture(color=(1, 1, 1)), visibility="public")
    private = upload(ctx, project_id, picture(color=(2, 2, 2)))
    generated = service.create_image(ctx, project_id, picture(color=(3, 3, 3)), Placement(), source="generated")
    upload(ctx, other_project_id, picture(color=(4, 4, 4)))

    def ids(**query):
        images, last_pk = service.list_images(project_id, ImageListQuery(**query))
        return [image.id for image in images], last_pk

    assert ids() == ([generated.id, private.id, public.id], None)
    assert ids(visibility="public") == ([public.id], None)
    assert ids(visibility="private", source="upload") == ([private.id], None)
    assert ids(source="generated") == ([generated.id], None)


def test_pages_have_no_duplicates_or_gaps_while_images_are_added(ctx, project_id):
    originals = [upload(ctx, project_id, picture(color=(n, 0, 0))).id for n in range(7)]
    seen, after_pk, pages = [], None, 0
    while True:
        images, after_pk = service.list_images(project_id, ImageListQuery(limit=3, after_pk=after_pk))
        seen += [image.id for image in images]
        pages += 1
        upload(ctx, project_id, picture(color=(0, pages, 0)))  # a new image arrives between pages
        if after_pk is None:
            break
    assert seen == originals[::-1] and pages == 3


# --- the wire format: upload fields, PATCH bodies, list queries -------------------------------


@pytest.mark.parametrize("fields,placement", [
    ({}, Placement()),
    ({"visibility": "public", "ttl_seconds": 60, "filename": "a.png", "alias": "@hero", "strip_metadata": True},
     Placement("public", 60, "a.png", "hero", True)),
    ({"permanent": True, "alias": "logo_2"}, Placement(alias="logo_2")),
    ({"ttl_seconds": wire.MAX_TTL_SECONDS, "strip_metadata": False}, Placement(ttl_seconds=wire.MAX_TTL_SECONDS)),
    ({"alias": "@" + "a" * 64}, Placement(alias="a" * 64)),
])
def test_upload_fields_become_a_placement(fields, placement):
    assert wire.placement_from(fields) == placement


BAD_ALIAS = "alias must be '@' followed by 1-64 of a-z, 0-9, '_' and '-', starting with a letter or digit."


@pytest.mark.parametrize("fields,message", [
    ({"visibility": "secret"}, "visibility must be 'public' or 'private'."),
    ({"visibility": None}, "visibility must be 'public' or 'private'."),
    ({"ttl_seconds": 0}, "ttl_seconds must be a positive whole number of seconds."),
    ({"ttl_seconds": -5}, "ttl_seconds must be a positive whole number of seconds."),
    ({"ttl_seconds": True}, "ttl_seconds must be a positive whole number of seconds."),
    ({"ttl_seconds": "soon"}, "ttl_seconds must be a positive whole number of seconds."),
    ({"ttl_seconds": wire.MAX_TTL_SECONDS + 1}, f"ttl_seconds may be at most {wire.MAX_TTL_SECONDS}."),
    ({"ttl_seconds": 60, "permanent": True}, "ttl_seconds and permanent cannot be used together."),
    ({"permanent": False}, "permanent only takes true (an image without ttl_seconds has no expiry)."),
    ({"permanent": "yes"}, "permanent must be true or false."),
    ({"strip_metadata": "yes"}, "strip_metadata must be true or false."),
    ({"strip_metadata": 2}, "strip_metadata must be true or false."),
    ({"alias": "@Not Valid"}, BAD_ALIAS),
    ({"alias": "@UPPER"}, BAD_ALIAS),
    ({"alias": "@-dash-first"}, BAD_ALIAS),
    ({"alias": "@" + "a" * 65}, BAD_ALIAS),
    ({"alias": "hero\n"}, BAD_ALIAS),
    ({"alias": 5}, BAD_ALIAS),
])
def test_bad_upload_fields_are_invalid_requests(fields, message):
    error = refused(InvalidRequest, "invalid_request", 400, wire.placement_from, fields)
    assert error.message == message


def patch_changes(app, body=None, raw=None):
    """image_changes() for a PATCH with this JSON body (or these raw bytes as JSON)."""
    options = {"json": body} if raw is None else {"data": raw, "content_type": "application/json"}
    with app.test_request_context("/v1/images/img_x", method="PATCH", **options):
        return wire.image_changes()


@pytest.mark.parametrize("body,changes", [
    ({}, ImageChanges()),
    ({"visibility": "public"}, ImageChanges(visibility="public")),
    ({"ttl_seconds": 30}, ImageChanges(change_expiry=True, ttl_seconds=30)),
    ({"ttl_seconds": None}, ImageChanges(change_expiry=True)),
    ({"permanent": True}, ImageChanges(change_expiry=True)),
    ({"alias": "@hero"}, ImageChanges(change_alias=True, alias="hero")),
    ({"alias": None}, ImageChanges(change_alias=True)),
    ({"filename": "new.png", "visibility": "private"}, ImageChanges(visibility="private", filename="new.png")),
])
def test_patch_bodies_become_image_changes(wire_app, body, changes):
    assert patch_changes(wire_app, body) == changes


@pytest.mark.parametrize("body,raw", [
    ({"ttl_seconds": 60, "permanent": True}, None),
    ({"ttl_seconds": None, "permanent": True}, None),
    ({"ttl_seconds": 0}, None),
    ({"ttl_seconds": 1.5}, None),
    ({"ttl_seconds": True}, None),
    ({"ttl_seconds": "60"}, None),
    ({"visibility": "everyone"}, None),
    ({"visibility": None}, None),
    ({"permanent": "maybe"}, None),
    ({"permanent": False}, None),
    ({"alias": "@UPPER"}, None),
    ({"alias": 5}, None),
    ({"filename": ""}, None),
    ({"filename": "   "}, None),
    ({"filename": 5}, None),
    ({"color": "red"}, None),
    (None, b"[1,2]"),
    (None, b"not json"),
    (None, b"[" * 100000 + b"]" * 100000),
])
def test_bad_patch_bodies_are_invalid_requests(wire_app, body, raw):
    refused(InvalidRequest, "invalid_request", 400, patch_changes, wire_app, body, raw)


@pytest.mark.parametrize("args,query", [
    ({}, ImageListQuery(None, None, 20, None)),
    ({"source": "", "visibility": "", "cursor": "", "limit": ""}, ImageListQuery()),
    ({"source": "generated", "visibility": "public", "limit": "100"}, ImageListQuery("generated", "public", 100, None)),
    ({"limit": " 1 ", "cursor": wire.encode_cursor(42)}, ImageListQuery(limit=1, after_pk=42)),
    ({"cursor": wire.encode_cursor(10**18 - 1)}, ImageListQuery(after_pk=10**18 - 1)),
])
def test_query_strings_become_list_queries(args, query):
    assert wire.list_query(MultiDict(args)) == query


@pytest.mark.parametrize("args", [
    {"limit": "0"}, {"limit": "101"}, {"limit": "abc"}, {"limit": "-1"}, {"limit": "\u00b2"}, {"limit": "9" * 4400},
    {"source": "other"}, {"visibility": "secret"},
    {"cursor": "@@@"}, {"cursor": "djE6eA"}, {"cursor": base64.urlsafe_b64encode(b"v2:5").decode()},
    {"cursor": base64.urlsafe_b64encode(b"v1:" + b"9" * 20).decode()},
], ids=lambda args: "-".join(f"{key}={value[:12]}" for key, value in args.items()))
def test_bad_query_strings_are_invalid_requests(args):
    refused(InvalidRequest, "invalid_request", 400, wire.list_query, MultiDict(args))


# --- the wire format: image bodies (multipart and JSON) -----------------------------------------


def image_request(app, reader, max_bytes=1_000_000, form=None, file=None, body=None):
    """reader(max_bytes) inside a request carrying a multipart form (with `file`: (bytes, name)) or a JSON body."""
    if body is not None:
        options = {"json": body}
    else:
        data = dict(form or {})
        if file is not None:
            data["file"] = (io.BytesIO(file[0]), file[1])
        options = {"data": data, "content_type": "multipart/form-data"}
    with app.test_request_context("/v1/images", method="POST", **options):
        return reader(max_bytes)


def test_an_upload_request_in_multipart_or_json_becomes_a_placement_and_bytes(wire_app):
    data = picture()
    form = {"visibility": "public", "ttl_seconds": "60", "strip_metadata": "TRUE", "alias": "@hero", "filename": ""}
    placement, sent = image_request(wire_app, wire.upload_request, form=form, file=(data, "photo.png"))
    assert placement == Placement("public", 60, "photo.png", "hero", True) and sent == data
    form = {"filename": "chosen.png", "permanent": "1"}
    placement, _sent = image_request(wire_app, wire.upload_request, form=form, file=(data, "x.png"))
    assert placement == Placement(filename="chosen.png")
    body = {"data": base64.b64encode(data).decode(), "visibility": "public", "filename": "a.png"}
    assert image_request(wire_app, wire.upload_request, body=body) == (Placement("public", filename="a.png"), data)
    error = refused(ImageTooLarge, "image_too_large", 413, image_request, wire_app, wire.upload_request, 100,
                    file=(b"x" * 250, "a.png"))
    assert error.message == "The image is 250 bytes; the limit is 100 bytes."


@pytest.mark.parametrize("request_options,error_type,slug,status", [
    ({"form": {"other": "x"}}, InvalidRequest, "invalid_request", 400),
    ({"form": {"ttl_seconds": "soon"}, "file": (b"x", "a.png")}, InvalidRequest, "invalid_request", 400),
    ({"form": {"ttl_seconds": "9" * 4400}, "file": (b"x", "a.png")}, InvalidRequest, "invalid_request", 400),
    ({"form": {"ttl_seconds": "0"}, "file": (b"x", "a.png")}, InvalidRequest, "invalid_request", 400),
    ({"form": {"strip_metadata": "yes"}, "file": (b"x", "a.png")}, InvalidRequest, "invalid_request", 400),
    ({"form": {"permanent": "false"}, "file": (b"x", "a.png")}, InvalidRequest, "invalid_request", 400),
    ({"file": (b"x" * 101, "a.png")}, ImageTooLarge, "image_too_large", 413),
    ({"body": {}}, InvalidRequest, "invalid_request", 400),
    ({"body": {"data": ""}}, InvalidRequest, "invalid_request", 400),
    ({"body": {"data": "not base64!!"}}, InvalidRequest, "invalid_request", 400),
    ({"body": {"data": 5}}, InvalidRequest, "invalid_request", 400),
    ({"body": {"data": "A" * 200}}, ImageTooLarge, "image_too_large", 413),
    ({"body": {"data": "AAAA", "strip_metadata": 2}}, InvalidRequest, "invalid_request", 400),
    ({"body": {"data": "AAAA", "ttl_seconds": "soon"}}, InvalidRequest, "invalid_request", 400),
    ({"body": {"data": "AAAA", "colour": "red"}}, InvalidRequest, "invalid_request", 400),
])
def test_bad_upload_requests_are_refused_with_their_status(wire_app, request_options, error_type, slug, status):
    refused(error_type, slug, status, image_request, wire_app, wire.upload_request, 100, **request_options)


def test_a_replacement_request_reads_only_strip_metadata_and_the_bytes(wire_app):
    data = picture()
    assert image_request(wire_app, wire.replace_request, form={"strip_metadata": "true"}, file=(data, "n.bin")) == (True, data)
    encoded = base64.b64encode(data).decode()
    assert image_request(wire_app, wire.replace_request, body={"data": encoded}) == (False, data)
    for body in ({"data": encoded, "visibility": "public"}, {"data": "not base64!"}, {}):
        refused(InvalidRequest, "invalid_request", 400, image_request, wire_app, wire.replace_request, body=body)
