"""Variants at the service level: parameters, Accept negotiation, renders of a table of originals, and finding,
storing, limiting and purging renders."""

import dataclasses
import io
import os
import subprocess
import sys
from datetime import timedelta
from urllib.parse import parse_qsl

import pytest
from PIL import Image
from werkzeug.datastructures import MultiDict

from goodeye.config import Settings
from goodeye.errors import (
    ImageNotFound,
    ImageTooLargeDimensions,
    InvalidImage,
    InvalidRequest,
    RateLimited,
    ServiceUnavailable,
)
from goodeye.identity.service import create_org, create_project
from goodeye.images import service as images
from goodeye.images.blobs import check_blobs
from goodeye.live.service import stale_claim_age
from goodeye.models import Blob, Variant, utcnow
from goodeye.models import Image as ModelImage
from goodeye.serving.check import ServableImage
from goodeye.variants import service
from goodeye.variants.params import VariantSpec, accepted_formats, check_written_plainly, parse_variant_params
from goodeye.variants.render import render
from goodeye.variants.service import purge_variants, variant_of, variant_stats
from goodeye.variants.slots import RenderSlots
from tests import factories

SIZES = Settings().variant_sizes


def encode(im, fmt, **options):
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def animated(fmt):
    frames = [Image.new("RGB", (120, 80), colour) for colour in ("red", "lime", "blue")]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=0)


def exif_rotated_jpeg():
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise: 300×200 stored, 200×300 shown
    picture = Image.new("RGB", (300, 200), "blue")
    picture.paste("red", (0, 0, 150, 200))  # the left half, which ends up on top
    return encode(picture, "JPEG", exif=exif, quality=95)


# name -> (content type, bytes, shown size, frames)
ORIGINALS = {
    "png-alpha": ("image/png", encode(Image.new("RGBA", (300, 200), (255, 0, 0, 128)), "PNG"), (300, 200), 1),
    "cmyk-jpeg": ("image/jpeg", encode(Image.new("CMYK", (300, 200), (0, 255, 255, 0)), "JPEG"), (300, 200), 1),
    "exif-rotated-jpeg": ("image/jpeg", exif_rotated_jpeg(), (200, 300), 1),
    "animated-gif": ("image/gif", animated("GIF"), (120, 80), 3),
    "animated-webp": ("image/webp", animated("WEBP"), (120, 80), 3),
    "png-16-bit": ("image/png", encode(Image.new("I;16", (300, 200), 40000), "PNG"), (300, 200), 1),
}

PARAMETERS = [
    # (query, expected size for a 300×200 / 200×300 / 120×80 original: a function of the shown size)
    ({"w": "64"}, lambda w, h: (64, round(h * 64 / w))),
    ({"h": "48", "fm": "webp"}, lambda w, h: (round(w * 48 / h), 48)),
    ({"w": "64", "h": "64", "fit": "cover", "fm": "jpeg"}, lambda w, h: (64, 64)),
    ({"w": "96", "fm": "avif"}, lambda w, h: (96, round(h * 96 / w))),
    ({"w": "3840", "fm": "png"}, lambda w, h: (w, h)),  # never enlarged
]

PILLOW_NAMES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF", "image/avif": "AVIF"}


def _query_id(value):
    return "&".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else ""


@pytest.mark.parametrize("original", list(ORIGINALS))
@pytest.mark.parametrize("query,size", PARAMETERS, ids=_query_id)
def test_renders_have_the_asked_size_and_format(original, query, size):
    content_type, data, shown, frames = ORIGINALS[original]
    spec = parse_variant_params(MultiDict(query), SIZES).resolve(content_type)
    rendered = render(io.BytesIO(data), spec, 50_000_000)
    picture = Image.open(io.BytesIO(rendered.data))
    assert PILLOW_NAMES[rendered.content_type] == picture.format
    assert picture.size == size(*shown) == (rendered.width, rendered.height)
    # Animation survives in WebP and the original's own format; other formats get the first frame.
    keeps_animation = spec.fm in ("webp", spec.source_format)
    assert getattr(picture, "n_frames", 1) == (frames if keeps_animation else 1)
    assert not picture.getexif()
    if original == "png-alpha" and spec.fm != "jpeg":
        assert picture.convert("RGBA").getpixel((1, 1))[3] in range(120, 136)
    if original == "png-alpha" and spec.fm == "jpeg":
        assert picture.getpixel((1, 1))[1] > 100  # half-transparent red over white, not over black
    if original == "cmyk-jpeg":
        assert picture.mode.startswith("RGB")
        red, green, blue = picture.convert("RGB").getpixel((1, 1))[:3]
        assert red > 200 and green < 60 and blue < 60
    if original == "png-16-bit":
        assert abs(picture.convert("L").getpixel((1, 1)) - 40000 // 256) <= 3
    if original == "exif-rotated-jpeg":
        top = picture.convert("RGB").getpixel((picture.width // 2, 2))
        assert top[0] > 200 and top[2] < 60  # the stored left half, on top once turned


@pytest.mark.parametrize("query,size", [({"w": "48"}, (48, 32)), ({"h": "32"}, (48, 32))], ids=_query_id)
def test_the_whole_factor_shrink_does_not_move_the_rounded_size(query, size):
    # 300×200 shrinks by 6 to 50×34 before the resize; the size is still the full size's, rounded once.
    spec = parse_variant_params(MultiDict(query), SIZES).resolve("image/png")
    rendered = render(io.BytesIO(factories.png((300, 200))), spec, 50_000_000)
    assert Image.open(io.BytesIO(rendered.data)).size == size == (rendered.width, rendered.height)


def test_the_colour_profile_is_carried_and_other_metadata_is_not():
    original = factories.image_with_metadata("JPEG")
    spec = parse_variant_params(MultiDict({"w": "64", "fm": "webp"}), SIZES).resolve("image/jpeg")
    rendered = render(io.BytesIO(original), spec, 50_000_000)
    picture = Image.open(io.BytesIO(rendered.data))
    assert picture.info.get("icc_profile") == Image.open(io.BytesIO(original)).info["icc_profile"]
    assert factories.SECRET not in rendered.data


def test_an_original_over_the_pixel_limit_is_refused():
    spec = VariantSpec(w=64).resolve("image/png")
    with pytest.raises(ImageTooLargeDimensions):
        render(io.BytesIO(factories.png((100, 100))), spec, 9_999)


@pytest.mark.parametrize("original", ["animated-gif", "animated-webp"])
def test_an_animation_past_the_decode_budget_gives_its_first_frame(original):
    content_type, data, (width, height), frames = ORIGINALS[original]
    spec = VariantSpec(w=32, fm="webp").resolve(content_type)
    # Keeping the animation decodes frames × width × height pixels: at most twice the pixel limit.
    budget = frames * width * height // 2
    kept = Image.open(io.BytesIO(render(io.BytesIO(data), spec, budget).data))
    assert kept.n_frames == frames
    still = Image.open(io.BytesIO(render(io.BytesIO(data), spec, budget - 1).data))
    assert getattr(still, "n_frames", 1) == 1 and still.width == 32
    assert still.convert("RGB").getpixel((1, 1))[0] > 200  # the first frame (red)


def test_render_slots_count_the_cpus_this_process_may_use(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert RenderSlots(str(tmp_path)).count == 2
    monkeypatch.delattr(os, "sched_getaffinity")
    assert RenderSlots(str(tmp_path)).count == 64


@pytest.mark.parametrize(
    "query,named",
    [
        ({"w": "0"}, "16, 32, 48"),
        ({"w": "641"}, "640, 750"),
        ({"w": "abc"}, "3840"),
        ({"h": "0640"}, "640"),
        (MultiDict([("w", "640"), ("w", "640")]), "once"),
        ({"w": "640", "fit": "cover"}, "both w and h"),
        ({"fit": "contain"}, "scale-down, cover"),
        ({"fm": "gif"}, "auto, webp, avif, jpeg, png"),
        ({"fm": "svg"}, "auto, webp, avif, jpeg, png"),
    ],
)
def test_bad_parameters_are_refused_naming_what_is_allowed(query, named):
    with pytest.raises(InvalidRequest) as refused:
        parse_variant_params(MultiDict(query), SIZES)
    assert (refused.value.status, refused.value.slug, refused.value.code) == (400, "invalid_request", "VALIDATION_ERROR")
    assert named in refused.value.message


def test_no_variant_parameter_is_no_variant_and_others_are_ignored():
    assert parse_variant_params(MultiDict({"v": "3", "prompt": "x"}), SIZES) is None
    spec = parse_variant_params(MultiDict({"fm": "webp", "v": "3", "w": "640", "fit": "scale-down"}), SIZES)
    assert spec == VariantSpec(w=640, fm="webp")
    assert spec.query() == "w=640&fm=webp"


@pytest.mark.parametrize(
    "accept,chosen",
    [
        ("image/avif,image/webp,*/*", "avif"),
        ("image/webp,*/*;q=0.8", "webp"),
        ("image/avif;q=0,image/webp", "webp"),
        ("*/*", "png"),
        ("image/*", "png"),
        (None, "png"),
    ],
)
def test_auto_picks_the_format_accept_names(accept, chosen):
    spec = VariantSpec(w=64, fm="auto")
    assert spec.negotiated
    assert spec.resolve("image/png", accepted_formats(accept)).fm == chosen


def test_renders_beyond_the_nodes_slots_wait_then_get_a_503(tmp_path):
    slots = RenderSlots(str(tmp_path), count=2, wait_seconds=0)
    with slots.hold(), slots.hold():
        # Another process of the node sees the same lock files: a third render has no slot.
        with pytest.raises(ServiceUnavailable) as busy:
            with RenderSlots(str(tmp_path), count=2, wait_seconds=0).hold():
                pass
        assert busy.value.headers["Retry-After"]
    with slots.hold():
        pass  # freed when their holders finished


def test_a_render_of_bytes_replaced_meanwhile_is_not_kept(ctx):
    create_org("acme")
    project_id = create_project("acme/site")[0].id
    image = images.create_image(ctx, project_id, factories.png((120, 80)), images.Placement())
    # The request found the image before the replacement; its claim and render come after it.
    servable = ServableImage.from_image(image)
    replaced = images.replace_image_bytes(ctx, project_id, image.id, factories.png((90, 60)), strip=False)
    with pytest.raises(ServiceUnavailable) as changed:
        variant_of(ctx, servable, VariantSpec(w=32, fm="webp"), accept=None, anonymous_ip=None)
    assert changed.value.headers["Retry-After"]
    # Nothing was stored for the old bytes: no variant row, no blob beside the image's own.
    assert Variant.select().count() == 0
    assert [blob.sha256 for blob in Blob.select()] == [replaced.sha256]
    # Asked again, the variant renders from the new bytes.
    current = ServableImage.from_image(ModelImage.get(ModelImage.id == image.id))
    assert variant_of(ctx, current, VariantSpec(w=32, fm="webp"), accept=None, anonymous_ip=None).content_type == "image/webp"
    assert Variant.select().where(Variant.source_sha256 == replaced.sha256).count() == 1
    images.delete_image(ctx, project_id, image.id)
    with pytest.raises(ImageNotFound):
        variant_of(ctx, current, VariantSpec(w=48, fm="webp"), accept=None, anonymous_ip=None)
    assert Variant.select().count() == 0


def test_sizes_are_the_configured_ones_and_the_refusal_names_them():
    assert parse_variant_params(MultiDict({"w": "100"}), (100, 200)) == VariantSpec(w=100)
    with pytest.raises(InvalidRequest) as refused:
        parse_variant_params(MultiDict({"w": "640"}), (100, 200))
    assert "100, 200" in refused.value.message and "'640'" in refused.value.message


@pytest.mark.parametrize(
    "query,spec,canonical",
    [
        ({"w": "640"}, VariantSpec(w=640), "w=640"),
        ({"h": "3840"}, VariantSpec(h=3840), "h=3840"),
        ({"fit": "cover", "h": "32", "w": "16"}, VariantSpec(16, 32, "cover"), "w=16&h=32&fit=cover"),
        ({"fm": "auto"}, VariantSpec(fm="auto"), "fm=auto"),
        ({"fm": "avif", "fit": "scale-down", "w": "96"}, VariantSpec(w=96, fm="avif"), "w=96&fm=avif"),
        ({"fm": "jpeg", "h": "750", "prompt": "a red bicycle"}, VariantSpec(h=750, fm="jpeg"), "h=750&fm=jpeg"),
    ],
    ids=_query_id,
)
def test_good_parameters_give_their_spec_in_one_canonical_form(query, spec, canonical):
    parsed = parse_variant_params(MultiDict(query), SIZES)
    assert parsed == spec
    assert parsed.query() == canonical
    assert parse_variant_params(MultiDict(parse_qsl(canonical)), SIZES) == spec


@pytest.mark.parametrize(
    "query",
    [
        b"%66m=auto&%77=96",
        b"w=96&fm=%61uto",
        b"w=96&f%6D=auto",
        b"w=9%36&fm=auto",
        b"w=96&fit=scale%2Ddown",
        b"fm=auto+",
        b"v=3&%68=64",
    ],
)
def test_percent_encoded_variant_parameters_are_refused(query):
    with pytest.raises(InvalidRequest) as refused:
        check_written_plainly(query)
    assert (refused.value.status, refused.value.slug) == (400, "invalid_request")
    assert "without percent-encoding" in refused.value.message


def test_the_refusal_of_an_encoded_parameter_names_it():
    with pytest.raises(InvalidRequest) as refused:
        check_written_plainly(b"w=96&%66m=auto")
    assert refused.value.message.startswith("The query parameter fm ")


@pytest.mark.parametrize(
    "query", [b"", b"w=96&fm=auto", b"w=96&prompt=a%20red+bicycle&v=%33", b"fit=cover&w=64&h=64", b"w", b"%7A=1"]
)
def test_plainly_written_parameters_and_encoded_others_pass(query):
    assert check_written_plainly(query) is None


@pytest.mark.parametrize(
    "original,fm,accepted,key",
    [
        ("image/jpeg", "auto", {"avif", "webp"}, "w=64,h=0,fit=scale-down,fm=avif"),
        ("image/jpeg", "auto", {"webp"}, "w=64,h=0,fit=scale-down,fm=webp"),
        ("image/jpeg", "auto", set(), "w=64,h=0,fit=scale-down,fm=jpeg"),
        ("image/gif", "auto", set(), "w=64,h=0,fit=scale-down,fm=gif"),
        ("image/gif", None, {"avif", "webp"}, "w=64,h=0,fit=scale-down,fm=gif"),
        ("image/webp", "png", {"avif"}, "w=64,h=0,fit=scale-down,fm=png"),
    ],
)
def test_the_output_format_is_resolved_from_fm_accept_and_the_original(original, fm, accepted, key):
    resolved = VariantSpec(w=64, fm=fm).resolve(original, frozenset(accepted))
    assert resolved.key == key
    assert resolved.content_type == f"image/{key.rpartition('=')[2]}"
    assert not resolved.is_identity


@pytest.mark.parametrize(
    "spec,accepted,identity",
    [
        (VariantSpec(fm="png"), set(), True),
        (VariantSpec(fm="auto"), set(), True),
        (VariantSpec(fm="auto"), {"webp"}, False),
        (VariantSpec(fm="jpeg"), set(), False),
        (VariantSpec(w=3840, fm="png"), set(), False),
        (VariantSpec(h=16), set(), False),
    ],
)
def test_only_the_originals_own_format_at_its_own_size_is_identity(spec, accepted, identity):
    assert spec.resolve("image/png", frozenset(accepted)).is_identity is identity


def test_accept_is_read_case_insensitively_and_q0_excludes():
    assert accepted_formats("Image/AVIF, image/WebP;q=0.5") == {"avif", "webp"}
    assert accepted_formats("image/webp;q=0, image/png") == frozenset()
    assert accepted_formats("") == frozenset()


def striped(size, colours):
    """An RGB picture of vertical stripes of equal width, one per colour, as PNG."""
    picture = Image.new("RGB", size)
    stripe = size[0] // len(colours)
    for index, colour in enumerate(colours):
        picture.paste(colour, (index * stripe, 0, (index + 1) * stripe, size[1]))
    return encode(picture, "PNG")


def rendered_picture(data, content_type, query, max_pixels=50_000_000):
    """Render the variant `query` (a dict of parameters) asks of `data`; the result decoded with Pillow."""
    spec = parse_variant_params(MultiDict(query), SIZES).resolve(content_type)
    return Image.open(io.BytesIO(render(io.BytesIO(data), spec, max_pixels).data))


def test_cover_fills_the_box_with_the_centred_crop():
    picture = rendered_picture(striped((300, 100), ("lime", "red", "blue")), "image/png", {"w": "64", "h": "64", "fit": "cover"})
    assert picture.size == (64, 64)
    # The centred 100×100 square of a 300×100 source is the middle stripe only.
    for x in (1, 32, 62):
        red, green, blue = picture.convert("RGB").getpixel((x, 32))
        assert red > 200 and green < 60 and blue < 60


def test_cover_of_an_exif_rotated_jpeg_crops_the_shown_picture():
    # Shown 200×300, red on top: a 64×32 box crops its middle, half red, half blue.
    picture = rendered_picture(exif_rotated_jpeg(), "image/jpeg", {"w": "64", "h": "32", "fit": "cover", "fm": "png"})
    assert picture.size == (64, 32)
    top, bottom = picture.getpixel((32, 2)), picture.getpixel((32, 29))
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def frames_of(picture):
    """(duration, dominant channel: 0 red, 1 green, 2 blue) of each frame of a decoded animation."""
    frames = []
    for index in range(picture.n_frames):
        picture.seek(index)
        picture.load()  # WebP reads a frame's duration as it decodes it
        colour = picture.convert("RGB").getpixel((picture.width // 2, picture.height // 2))
        frames.append((picture.info["duration"], max(range(3), key=colour.__getitem__)))
    return frames


@pytest.mark.parametrize("original", ["animated-gif", "animated-webp"])
@pytest.mark.parametrize("fm", [None, "webp"])
def test_a_kept_animation_keeps_its_frames_in_order_and_its_loop(original, fm):
    content_type, data, _shown, _frames = ORIGINALS[original]
    picture = rendered_picture(data, content_type, {"w": "48", **({"fm": fm} if fm else {})})
    assert picture.size == (48, 32) and picture.n_frames == 3
    assert [channel for _duration, channel in frames_of(picture)] == [0, 1, 2]  # red, lime, blue
    assert picture.info.get("loop") == 0


@pytest.mark.parametrize("original", ["animated-gif", "animated-webp"])
@pytest.mark.parametrize("query", [{"w": "48"}, {"w": "48", "fm": "webp"}], ids=_query_id)
def test_a_kept_animation_keeps_each_frames_duration(original, query):
    content_type, data, _shown, _frames = ORIGINALS[original]
    picture = rendered_picture(data, content_type, query)
    assert [duration for duration, _channel in frames_of(picture)] == [100, 200, 300]


def transparent_gif():
    """A 64×48 palette GIF: the left half transparent, the right half red."""
    picture = Image.new("P", (64, 48), 0)
    picture.putpalette([0, 0, 0, 255, 0, 0])
    picture.paste(1, (32, 0, 64, 48))
    return encode(picture, "GIF", transparency=0)


def test_a_palette_transparency_is_kept_or_composited_on_white():
    kept = rendered_picture(transparent_gif(), "image/gif", {"w": "32", "fm": "png"}).convert("RGBA")
    assert kept.size == (32, 24)
    assert kept.getpixel((2, 12))[3] == 0 and kept.getpixel((29, 12)) == (255, 0, 0, 255)
    flattened = rendered_picture(transparent_gif(), "image/gif", {"w": "32", "fm": "jpeg"})
    assert flattened.mode == "RGB"
    assert min(flattened.getpixel((2, 12))) > 240  # white, not the hidden black


def test_bytes_pillow_cannot_decode_are_an_invalid_image():
    truncated = factories.png((120, 80))[:60]
    spec = VariantSpec(w=64, fm="webp").resolve("image/png")
    with pytest.raises(InvalidImage) as refused:
        render(io.BytesIO(truncated), spec, 50_000_000)
    assert (refused.value.status, refused.value.slug) == (422, "invalid_image")


def test_an_animation_whose_frames_at_the_asked_size_exceed_the_limit_is_refused():
    content_type, data, _shown, _frames = ORIGINALS["animated-webp"]
    spec = VariantSpec(w=96, h=96, fit="cover", fm="webp").resolve(content_type)
    # 120×80 is within 20 000 pixels and its 3 frames within the decode budget (twice that);
    # 3 frames of 96×96 (27 648 pixels) are not.
    with pytest.raises(ImageTooLargeDimensions) as refused:
        render(io.BytesIO(data), spec, 20_000)
    assert refused.value.status == 422 and "ask a smaller size" in refused.value.message


@pytest.fixture()
def project_id(ctx):
    """A project to store originals in."""
    create_org("acme")
    return create_project("acme/site")[0].id


@pytest.fixture()
def renders(monkeypatch):
    """The RenderSpecs the service renders, in order; the real render still runs."""
    calls = []

    def counted(source, spec, max_pixels):
        calls.append(spec)
        return render(source, spec, max_pixels)

    monkeypatch.setattr(service, "render", counted)
    return calls


def stored(ctx, project_id, data, **placement):
    """Store `data` as a new image of the project; the ServableImage a serving URL finds."""
    return ServableImage.from_image(images.create_image(ctx, project_id, data, images.Placement(**placement)))


def variant(ctx, image, accept=None, anonymous_ip=None, **params):
    """variant_of `image` for the VariantSpec `params` name."""
    return variant_of(ctx, image, VariantSpec(**params), accept=accept, anonymous_ip=anonymous_ip)


def stored_bytes(ctx, sha256):
    """The bytes of a blob in the context's store."""
    with ctx.storage.open(sha256) as source:
        return source.read()


def assert_blobs_agree(ctx):
    """The blob rows' references, the image and variant rows and the stored files all agree."""
    report = check_blobs(ctx.storage)
    assert not report.drift(), report.record()


def test_a_variant_is_rendered_once_and_found_again_by_bytes_and_parameters(ctx, project_id, renders):
    image = stored(ctx, project_id, factories.png((300, 200)), visibility="public")
    first = variant(ctx, image, w=64, fm="webp")
    # The same record (id, token, rules), with the variant's bytes.
    assert (first.id, first.token, first.visibility) == (image.id, image.token, "public")
    assert first.content_type == "image/webp" and first.sha256 != image.sha256
    data = stored_bytes(ctx, first.sha256)
    assert len(data) == first.size_bytes and Image.open(io.BytesIO(data)).size == (64, 43)
    row = Variant.get()
    assert (row.source_sha256, row.params, row.variant_sha256) == (image.sha256, "w=64,h=0,fit=scale-down,fm=webp", first.sha256)
    assert (row.width, row.height, row.content_type, row.size_bytes) == (64, 43, "image/webp", len(data))
    assert Blob.get(Blob.sha256 == first.sha256).refs == 1

    # Asked again, and asked through fm=auto resolving to the same render: no second render.
    assert variant(ctx, image, w=64, fm="webp") == first
    assert variant(ctx, image, accept="image/webp,*/*;q=0.8", w=64, fm="auto") == first
    assert [spec.key for spec in renders] == ["w=64,h=0,fit=scale-down,fm=webp"]
    assert variant_stats() == {"variants": 1, "rendering": 0, "bytes": len(data)}
    assert_blobs_agree(ctx)


def test_images_with_the_same_bytes_share_their_variants(ctx, project_id, renders):
    data = factories.jpeg((300, 200))
    one, other = stored(ctx, project_id, data), stored(ctx, project_id, data)
    assert one.sha256 == other.sha256 and one.id != other.id
    rendered = variant(ctx, one, w=96, fm="png")
    shared = variant(ctx, other, w=96, fm="png")
    assert shared.id == other.id and shared.sha256 == rendered.sha256
    assert len(renders) == 1

    # Deleting one of them keeps the variant for the other; deleting both reclaims it.
    images.delete_image(ctx, project_id, one.id)
    assert variant(ctx, other, w=96, fm="png").sha256 == rendered.sha256 and len(renders) == 1
    images.delete_image(ctx, project_id, other.id)
    assert Variant.select().count() == 0 and Blob.select().count() == 0
    assert not ctx.storage.exists(rendered.sha256) and not ctx.storage.exists(one.sha256)
    assert_blobs_agree(ctx)


@pytest.mark.parametrize(
    "params,accept",
    [({"fm": "png"}, None), ({"fm": "auto"}, "*/*"), ({"fm": "auto"}, "image/png,image/jpeg")],
    ids=["own-format", "auto-without-avif-or-webp", "auto-naming-others"],
)
def test_the_originals_own_format_at_its_own_size_is_the_original(ctx, project_id, renders, params, accept):
    image = stored(ctx, project_id, factories.png((120, 80)))
    assert variant(ctx, image, accept=accept, **params) is image
    assert renders == [] and Variant.select().count() == 0


def test_auto_renders_one_variant_per_negotiated_format(ctx, project_id, renders):
    image = stored(ctx, project_id, factories.jpeg((300, 200)))
    answers = {
        accept: variant(ctx, image, accept=accept, w=96, fm="auto")
        for accept in ("image/avif,image/webp,*/*", "image/webp,*/*", "*/*", "image/avif;q=0,image/webp")
    }
    assert {accept: answer.content_type for accept, answer in answers.items()} == {
        "image/avif,image/webp,*/*": "image/avif",
        "image/webp,*/*": "image/webp",
        "*/*": "image/jpeg",
        "image/avif;q=0,image/webp": "image/webp",
    }
    assert [spec.fm for spec in renders] == ["avif", "webp", "jpeg"]
    for answer in answers.values():
        picture = Image.open(io.BytesIO(stored_bytes(ctx, answer.sha256)))
        assert Image.MIME[picture.format] == answer.content_type and picture.width == 96


def test_purge_removes_the_rows_blobs_and_links_of_one_image_or_all(ctx, project_id, renders):
    photo = stored(ctx, project_id, factories.jpeg((300, 200)), visibility="public")
    drawing = stored(ctx, project_id, factories.png((120, 80)), visibility="public")
    photo_variants = [variant(ctx, photo, w=64, fm="webp"), variant(ctx, photo, h=48, fm="png")]
    drawing_variant = variant(ctx, drawing, w=32, fm="jpeg")
    link = ctx.links.add_variant(photo, photo_variants[0].sha256)
    assert os.path.exists(os.path.join(ctx.links.root, link))

    assert purge_variants(ctx, photo.id) == 2
    assert [row.source_sha256 for row in Variant.select()] == [drawing.sha256]
    for gone in photo_variants:
        assert not ctx.storage.exists(gone.sha256) and Blob.get_or_none(Blob.sha256 == gone.sha256) is None
    assert not os.path.exists(os.path.join(ctx.links.root, link))
    # The originals stay, and the drawing's variant with its blob.
    assert ctx.storage.exists(photo.sha256) and ctx.storage.exists(drawing_variant.sha256)
    assert_blobs_agree(ctx)

    # Asked again, a purged variant renders again, to the same bytes.
    assert variant(ctx, photo, w=64, fm="webp").sha256 == photo_variants[0].sha256
    assert len(renders) == 4
    assert purge_variants(ctx) == 2
    assert variant_stats() == {"variants": 0, "rendering": 0, "bytes": 0}
    assert sorted(sha256 for sha256, _modified in ctx.storage.iter_blobs()) == sorted([photo.sha256, drawing.sha256])
    assert_blobs_agree(ctx)


def test_purge_of_an_unknown_image_is_image_not_found(ctx, project_id):
    with pytest.raises(ImageNotFound) as missing:
        purge_variants(ctx, "img_nothere")
    assert missing.value.status == 404 and "img_nothere" in missing.value.message


@pytest.fixture()
def render_limit_of_two(ctx, monkeypatch):
    """GOODEYE_VARIANT_RENDER_LIMIT=2/hour for this test's context."""
    monkeypatch.setattr(ctx, "settings", dataclasses.replace(ctx.settings, variant_render_limit="2/hour"))


def test_new_anonymous_renders_are_limited_per_address(ctx, project_id, renders, render_limit_of_two):
    image = stored(ctx, project_id, factories.jpeg((300, 200)), visibility="public")
    visitor = "203.0.113.7"
    first = variant(ctx, image, anonymous_ip=visitor, w=64)
    for _ in range(3):  # a variant already rendered is never counted
        assert variant(ctx, image, anonymous_ip=visitor, w=64) == first
    second = variant(ctx, image, anonymous_ip=visitor, w=96)
    with pytest.raises(RateLimited) as refused:
        variant(ctx, image, anonymous_ip=visitor, w=128)
    assert (refused.value.status, refused.value.slug, refused.value.code) == (429, "rate_limited", "IP_RATE_LIMIT_EXCEEDED")
    assert "At most 2/hour new variants" in refused.value.message
    assert refused.value.headers["X-RateLimit-Limit"] == "2" and refused.value.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.value.headers["Retry-After"]) > 0
    # The refused render left no claim behind, and rendered nothing.
    assert [row.params for row in Variant.select().order_by(Variant.pk)] == [
        "w=64,h=0,fit=scale-down,fm=jpeg",
        "w=96,h=0,fit=scale-down,fm=jpeg",
    ]
    assert len(renders) == 2

    # Existing variants still answer; another address, and callers counted against no address, render.
    assert variant(ctx, image, anonymous_ip=visitor, w=96) == second
    assert variant(ctx, image, anonymous_ip="198.51.100.2", w=128).content_type == "image/jpeg"
    assert variant(ctx, image, anonymous_ip=None, w=256).content_type == "image/jpeg"
    assert len(renders) == 4


def test_a_render_that_fails_leaves_no_claim_so_the_next_request_tries_again(ctx, project_id, renders):
    image = stored(ctx, project_id, factories.png((120, 80)))
    path = ctx.storage.path(image.sha256)
    data = stored_bytes(ctx, image.sha256)
    os.chmod(path, 0o600)
    with open(path, "wb") as damaged:
        damaged.write(data[:60])
    with pytest.raises(InvalidImage):
        variant(ctx, image, w=64, fm="webp")
    assert Variant.select().count() == 0
    with open(path, "wb") as mended:
        mended.write(data)
    assert variant(ctx, image, w=64, fm="webp").content_type == "image/webp"
    assert len(renders) == 2 and Variant.select().count() == 1


def test_an_original_whose_bytes_are_gone_is_image_not_found(ctx, project_id):
    image = stored(ctx, project_id, factories.png((120, 80)))
    ctx.storage.delete(image.sha256)
    with pytest.raises(ImageNotFound):
        variant(ctx, image, w=64, fm="webp")
    assert Variant.select().count() == 0


def test_with_every_render_slot_busy_the_request_gets_a_503_and_leaves_no_claim(ctx, project_id, monkeypatch, tmp_path):
    image = stored(ctx, project_id, factories.png((120, 80)))
    busy = RenderSlots(str(tmp_path / "slots"), count=1, wait_seconds=0)
    monkeypatch.setattr(ctx, "render_slots", busy)
    with busy.hold():
        with pytest.raises(ServiceUnavailable) as refused:
            variant(ctx, image, w=64, fm="webp")
    assert refused.value.status == 503 and refused.value.headers["Retry-After"]
    assert Variant.select().count() == 0
    assert variant(ctx, image, w=64, fm="webp").content_type == "image/webp"


class ServiceClock:
    """Stands in for the `time` module of goodeye.variants.service: each sleep moves the clock on and runs `on_sleep`."""

    def __init__(self, on_sleep=None):
        self.now = 1_000.0
        self.sleeps = 0
        self.on_sleep = on_sleep

    def monotonic(self):
        """The fake clock's reading."""
        return self.now

    def sleep(self, seconds):
        """Move the clock on without waiting."""
        self.sleeps += 1
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep()


def claim_of_another_request(image, key):
    """The claim row a concurrent request of the same variant holds while it renders."""
    return Variant.create(source_sha256=image.sha256, params=key, claimed_at=utcnow())


def test_a_request_that_finds_the_variant_claimed_waits_for_that_render(ctx, project_id, renders, monkeypatch):
    image = stored(ctx, project_id, factories.png((300, 200)))
    key = "w=64,h=0,fit=scale-down,fm=webp"
    claim = claim_of_another_request(image, key)
    assert variant_stats()["rendering"] == 1

    def other_request_finishes():
        # Between two polls, the claim's holder stores its render and fills the row in.
        filled = {"variant_sha256": "f" * 64, "content_type": "image/webp", "size_bytes": 123}
        Variant.update(**filled).where(Variant.pk == claim.pk).execute()

    clock = ServiceClock(on_sleep=other_request_finishes)
    monkeypatch.setattr(service, "time", clock)
    waited = variant(ctx, image, w=64, fm="webp")
    assert (waited.sha256, waited.content_type, waited.size_bytes) == ("f" * 64, "image/webp", 123)
    assert clock.sleeps == 1 and renders == []


def test_a_claim_held_past_the_wait_gives_a_503_and_is_left_to_its_holder(ctx, project_id, renders, monkeypatch):
    image = stored(ctx, project_id, factories.png((300, 200)))
    claim = claim_of_another_request(image, "w=64,h=0,fit=scale-down,fm=webp")
    clock = ServiceClock()
    monkeypatch.setattr(service, "POLL_SECONDS", 10)
    monkeypatch.setattr(service, "time", clock)
    with pytest.raises(ServiceUnavailable) as refused:
        variant(ctx, image, w=64, fm="webp")
    assert refused.value.headers["Retry-After"] == "2"
    assert clock.now - 1_000.0 > service.CLAIM_WAIT_SECONDS and renders == []
    assert [row.pk for row in Variant.select()] == [claim.pk]


def test_a_stale_claim_is_taken_over_and_rendered(ctx, project_id, renders, monkeypatch):
    image = stored(ctx, project_id, factories.png((300, 200)))
    claim = claim_of_another_request(image, "w=64,h=0,fit=scale-down,fm=webp")
    # Its holder was killed: the claim is older than any render may take.
    stale_since = utcnow() - stale_claim_age(ctx.settings) - timedelta(seconds=1)
    Variant.update(claimed_at=stale_since).where(Variant.pk == claim.pk).execute()
    clock = ServiceClock()
    monkeypatch.setattr(service, "time", clock)
    rendered = variant(ctx, image, w=64, fm="webp")
    assert rendered.content_type == "image/webp" and len(renders) == 1 and clock.sleeps == 1
    row = Variant.get()
    assert row.claimed_at > stale_since + timedelta(seconds=1) and row.variant_sha256 == rendered.sha256


def test_a_render_identical_to_its_original_does_not_keep_the_original_alive(ctx, project_id):
    # A PNG made by Pillow, asked as a PNG no smaller than itself, renders to its own bytes.
    image = stored(ctx, project_id, factories.png((120, 80), (10, 20, 30)))
    assert variant(ctx, image, w=3840, fm="png").sha256 == image.sha256
    assert_blobs_agree(ctx)
    images.delete_image(ctx, project_id, image.id)
    assert (Blob.select().count(), Variant.select().count()) == (0, 0)
    assert not ctx.storage.exists(image.sha256)
    assert_blobs_agree(ctx)


def test_the_app_registers_every_output_format_when_it_loads_not_in_its_first_render(tmp_path):
    # Pillow would import all of its plugins (about 40 ms) on the first WebP or AVIF save.
    probe = "import goodeye.wsgi; from PIL import Image; print(sorted(f for f in ('WEBP', 'AVIF') if f in Image.SAVE))"
    env = {**os.environ, "GOODEYE_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "['AVIF', 'WEBP']"
