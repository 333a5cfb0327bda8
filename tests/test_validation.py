"""The upload validator against the generated hostile corpus, its limits and its shortcuts."""

import hashlib
import io
import random
import warnings
import zlib

import imagehash
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import GifImagePlugin, Image, ImageDraw, ImageFile, WebPImagePlugin

from goodeye.config import Settings
from goodeye.errors import GoodeyeError
from goodeye.images.validation import ImageLimits, sniff_format, validate_image
from tests.hostile_images import (
    DIMENSIONS,
    INVALID,
    TOO_COMPLEX,
    TOO_LARGE,
    UNSUPPORTED,
    hostile_corpus,
    jpeg_scan_bomb,
    make_animated_webp,
    make_apng,
    make_gif,
    make_png,
    valid_cases,
    zlib_zeros,
)

CORPUS = hostile_corpus()
VALID = {name: data for name, data, *_ in valid_cases()}
BY_NAME = {name: (data, expected) for name, data, expected in CORPUS}
DEFAULTS = ImageLimits()

# Pillow warns (it does not raise) between MAX_IMAGE_PIXELS and twice that, and on
# corrupt EXIF; both are expected here and asserted on in their own tests.
quiet_pillow = pytest.mark.filterwarnings(
    "ignore::PIL.Image.DecompressionBombWarning", "ignore:Corrupt EXIF data:UserWarning"
)


def slug_of(data, limits=DEFAULTS):
    """The error slug validate_image raises, or None when it accepts the bytes."""
    try:
        validate_image(data, limits)
    except GoodeyeError as exc:
        return exc.slug
    return None


@quiet_pillow
@pytest.mark.parametrize(("name", "data", "expected"), CORPUS, ids=[case[0] for case in CORPUS])
def test_corpus_case_gets_its_exact_outcome(name, data, expected):
    assert slug_of(data) == expected


@quiet_pillow
@pytest.mark.parametrize(
    ("name", "data", "fmt", "width", "height", "frames"), valid_cases(), ids=[case[0] for case in valid_cases()]
)
def test_accepted_image_is_described_from_its_bytes(name, data, fmt, width, height, frames):
    info = validate_image(data, DEFAULTS)
    expected_type = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp"), "GIF": ("image/gif", "gif")}
    assert (info.format, info.width, info.height, info.frames) == (fmt, width, height, frames)
    assert (info.content_type, info.ext) == expected_type[fmt]
    # The bytes exactly as uploaded, trailing polyglot payloads included.
    assert info.size_bytes == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert len(info.phash) == 16 and int(info.phash, 16) >= 0


def test_corpus_covers_every_outcome_and_format():
    outcomes = {expected for _, _, expected in CORPUS}
    assert outcomes == {None, UNSUPPORTED, INVALID, DIMENSIONS, TOO_COMPLEX}  # 413 needs a limit: see below
    assert {fmt for _, _, fmt, *_ in valid_cases()} == {"PNG", "JPEG", "WEBP", "GIF"}
    assert len(CORPUS) >= 150
    assert len({name for name, _, _ in CORPUS}) == len(CORPUS)


def test_corpus_generators_are_real_files(monkeypatch):
    # The hand-built bombs are only meaningful if they are what they claim to be.
    assert Image.open(io.BytesIO(make_gif((1, 1), [(0, 0, 1, 1)] * 1200))).n_frames == 1200
    assert Image.open(io.BytesIO(make_animated_webp((4, 4), 1200))).n_frames == 1200
    assert Image.open(io.BytesIO(make_apng(1, 1, 1200))).n_frames == 1200
    bomb = BY_NAME["bomb_png_1bit_30000x30000"][0]
    assert len(bomb) < 200_000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # only for this look inside
    with Image.open(io.BytesIO(bomb)) as im:
        assert (im.size, im.mode) == ((30000, 30000), "1")
        im.verify()  # every chunk CRC, through IEND
    # ...and its IDAT inflates to every row: a filter byte and 3750 bytes of pixels each.
    idat = bomb[41:-12]
    inflater, inflated = zlib.decompressobj(), 0
    for start in range(0, len(idat), 4096):
        inflated += len(inflater.decompress(idat[start : start + 4096]))
    assert inflater.eof and inflated == 30000 * 3751


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("name", [name for name, _, expected in CORPUS if expected == DIMENSIONS])
def test_bombs_get_the_same_slug_when_warnings_are_errors(name):
    data, expected = BY_NAME[name]
    assert slug_of(data) == expected


@pytest.fixture
def pillow_work(monkeypatch):
    """Record every decode, integrity pass and GIF frame step Pillow makes."""
    calls = []

    def spy(cls, method):
        original = getattr(cls, method)

        def recorder(self, *args, **kwargs):
            calls.append((method, args))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, recorder)

    for cls in (Image.Image, ImageFile.ImageFile, WebPImagePlugin.WebPImageFile):
        spy(cls, "load")
        spy(cls, "verify")
    spy(GifImagePlugin.GifImageFile, "_seek")
    return calls


@pytest.mark.parametrize("kind", ["png", "jpeg", "webp", "gif"])
def test_the_spy_sees_the_decode_of_a_valid_image(pillow_work, kind):
    data = VALID[{"png": "png_rgb", "jpeg": "jpeg_rgb", "webp": "webp_lossy", "gif": "gif_static"}[kind]]
    validate_image(data, DEFAULTS)
    assert "load" in {method for method, _ in pillow_work}


@quiet_pillow
@pytest.mark.parametrize("name", [name for name, _, expected in CORPUS if expected == DIMENSIONS])
def test_bombs_are_refused_before_any_decode(pillow_work, name):
    data, expected = BY_NAME[name]
    assert slug_of(data) == expected
    assert [method for method, _ in pillow_work if method != "_seek"] == []
    # Pillow only stepped onto the first GIF frame: its own frame walk (`n_frames`) never ran.
    assert all(args[0] == 0 for method, args in pillow_work if method == "_seek")


def test_the_30000_square_png_and_thousand_frame_gifs_are_refused(pillow_work):
    assert slug_of(BY_NAME["bomb_png_1bit_30000x30000"][0]) == DIMENSIONS
    assert slug_of(BY_NAME["bomb_gif_5000_frames"][0]) == DIMENSIONS
    assert slug_of(BY_NAME["bomb_gif_1001_frames"][0]) == DIMENSIONS
    assert [method for method, _ in pillow_work if method in ("load", "verify")] == []


def test_gif_frame_counting_stops_at_the_limit():
    data = BY_NAME["bomb_gif_1001_frames_then_truncated"][0]
    assert slug_of(data) == DIMENSIONS
    # With room for every frame the counter walks on and finds the broken tail.
    assert slug_of(data, ImageLimits(max_frames=2000)) == INVALID


def test_gif_frames_counted_without_pillow_walking_them(pillow_work):
    info = validate_image(VALID["gif_1000_frames_at_limit"], DEFAULTS)
    assert info.frames == 1000
    assert all(args[0] == 0 for method, args in pillow_work if method == "_seek")


# -- limits -----------------------------------------------------------------------------


def test_default_limits_are_the_documented_policy():
    assert DEFAULTS == ImageLimits(
        max_bytes=25 * 1024 * 1024, max_pixels=50_000_000, max_frames=1000,
        max_jpeg_scans=100, max_decode_bytes=128 * 1024 * 1024, max_decode_samples=1_000_000_000,
    )
    config = Settings()
    assert DEFAULTS == ImageLimits(
        config.max_upload_bytes, config.max_pixels, config.max_frames,
        config.max_jpeg_scans, config.max_decode_bytes, config.max_decode_samples,
    )


def test_the_jpeg_scan_limit_is_inclusive_and_configurable():
    data = jpeg_scan_bomb(64, 95)  # the encoder's scans, then the last one 95 times: 100 in all
    assert data.count(b"\xff\xda") == 100
    assert slug_of(data) is None
    assert slug_of(data, ImageLimits(max_jpeg_scans=99)) == TOO_COMPLEX


def test_the_decode_budget_counts_each_scan_over_the_whole_image():
    # 7000×7000 grey with 20 scans: 980 million samples, just under the default budget;
    # its coefficients (98 MB) fit the default memory budget too.
    data = jpeg_scan_bomb(7000, 15)
    assert data.count(b"\xff\xda") == 20
    assert slug_of(data) is None
    assert slug_of(data, ImageLimits(max_decode_samples=979_999_999)) == TOO_COMPLEX
    assert slug_of(data, ImageLimits(max_decode_bytes=7000 * 7000 * 2 - 1)) == TOO_COMPLEX


# Pillow's own layout (1 byte for "1", "L", "P"; 2 for "I;16"; 4 for multi-band modes), plus
# the hash's full-size grey copy of every mode but "L" and "RGB", which it shrinks first.
@pytest.mark.parametrize(
    "mode, bytes_per_pixel", [("1", 2), ("L", 1), ("P", 2), ("I;16", 3), ("LA", 5), ("RGB", 4), ("RGBA", 5)]
)
def test_the_decode_memory_budget_is_what_pillow_and_the_hash_hold(mode, bytes_per_pixel):
    buffer = io.BytesIO()
    Image.new(mode, (40, 30)).save(buffer, "PNG")
    data = buffer.getvalue()
    assert slug_of(data, ImageLimits(max_decode_bytes=40 * 30 * bytes_per_pixel)) is None
    assert slug_of(data, ImageLimits(max_decode_bytes=40 * 30 * bytes_per_pixel - 1)) == TOO_COMPLEX


def test_a_webp_counts_libwebps_own_buffer_too():
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buffer, "WEBP")
    assert slug_of(buffer.getvalue(), ImageLimits(max_decode_bytes=40 * 30 * 8)) is None
    assert slug_of(buffer.getvalue(), ImageLimits(max_decode_bytes=40 * 30 * 8 - 1)) == TOO_COMPLEX


def test_bombs_over_the_budget_are_refused_before_any_decode(pillow_work):
    bombs = (jpeg_scan_bomb(), BY_NAME["bomb_png_16bit_rgba_7000x7000"][0])
    pillow_work.clear()  # building the bombs drew with Pillow
    for data in bombs:
        assert slug_of(data) == TOO_COMPLEX
    assert not [method for method, _ in pillow_work if method == "load"], "refused before any decode"


def test_byte_limit_is_inclusive_and_configurable():
    data = VALID["png_rgb"]
    assert slug_of(data, ImageLimits(max_bytes=len(data))) is None
    assert slug_of(data, ImageLimits(max_bytes=len(data) - 1)) == TOO_LARGE


def test_byte_limit_is_checked_before_the_format():
    assert slug_of(b"not an image at all", ImageLimits(max_bytes=4)) == TOO_LARGE
    assert slug_of(b"", ImageLimits(max_bytes=0)) == UNSUPPORTED


@pytest.mark.parametrize("name", ["png_rgb", "jpeg_rgb", "webp_lossy", "gif_static"])
def test_pixel_limit_is_inclusive_and_configurable(name):
    data = VALID[name]
    assert slug_of(data, ImageLimits(max_pixels=64 * 48)) is None
    assert slug_of(data, ImageLimits(max_pixels=64 * 48 - 1)) == DIMENSIONS


@pytest.mark.parametrize("name", ["apng_3_frames", "webp_animated_3_frames", "gif_animated_3_frames"])
def test_frame_limit_is_inclusive_and_configurable(name):
    data = VALID[name]
    assert slug_of(data, ImageLimits(max_frames=3)) is None
    assert slug_of(data, ImageLimits(max_frames=2)) == DIMENSIONS


def test_pixel_limit_applies_to_every_gif_frame():
    # Pillow grows the canvas for a frame that overhangs it, so each frame's extent counts.
    data = make_gif((2, 2), [(0, 0, 1, 1), (0, 0, 1, 1), (10, 10, 1, 1)])
    assert slug_of(data, ImageLimits(max_pixels=121)) is None
    assert slug_of(data, ImageLimits(max_pixels=120)) == DIMENSIONS


def test_default_pixel_limit_is_reached_exactly():
    # 10000 × 5000 = 50,000,000: the largest frame the default policy accepts.
    data = make_png(10000, 5000, bit_depth=1, color_type=0, idat=zlib_zeros(5000 * (1 + 10000 // 8)))
    info = validate_image(data, DEFAULTS)
    assert (info.width, info.height) == (10000, 5000)
    assert slug_of(make_png(10000, 5001, bit_depth=1, color_type=0), DEFAULTS) == DIMENSIONS


def test_animated_webp_canvas_counts_not_its_frames():
    assert slug_of(make_animated_webp((100, 100), 2), ImageLimits(max_pixels=10_000)) is None
    assert slug_of(make_animated_webp((100, 101), 2), ImageLimits(max_pixels=10_000)) == DIMENSIONS


# -- format sniffing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"\xff\xd8\xff\xe0", "JPEG"),
        (b"GIF87a", "GIF"),
        (b"GIF89a", "GIF"),
        (b"RIFF\x00\x00\x00\x00WEBP", "WEBP"),
        (b"RIFF\x00\x00\x00\x00WAVE", None),
        (b"\x89PNG\r\n\x1a", None),
        (b"\xff\xd8", None),
        (b"GIF88a", None),
        (b"<svg", None),
        (b"\x00\x00\x00\x1cftypavif", None),
        (b"", None),
    ],
)
def test_sniff_format_reads_only_the_magic_number(data, expected):
    assert sniff_format(data) == expected


# -- hashes and side effects ---------------------------------------------------------------


def _drawing(size, seed):
    rng = random.Random(seed)
    im = Image.new("RGB", size, (200, 220, 255))
    draw = ImageDraw.Draw(im)
    for _ in range(40):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        box = (x, y, x + rng.randrange(50, size[0] // 2), y + rng.randrange(50, size[1] // 2))
        draw.ellipse(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    return im


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_cheap_phash_matches_imagehash_on_the_full_image(fmt):
    out = io.BytesIO()
    _drawing((2400, 1600), seed=7).save(out, fmt)
    data = out.getvalue()
    full = imagehash.phash(Image.open(io.BytesIO(data)))
    assert imagehash.hex_to_hash(validate_image(data, DEFAULTS).phash) - full <= 2


def test_phash_is_perceptual_and_sha256_is_exact():
    im = _drawing((320, 240), seed=3)
    png, webp = io.BytesIO(), io.BytesIO()
    im.save(png, "PNG")
    im.save(webp, "WEBP", lossless=True)
    a, b = validate_image(png.getvalue(), DEFAULTS), validate_image(webp.getvalue(), DEFAULTS)
    assert a.phash == b.phash
    assert a.sha256 != b.sha256
    other = validate_image(VALID["png_rgb"], DEFAULTS)
    assert imagehash.hex_to_hash(a.phash) - imagehash.hex_to_hash(other.phash) > 10


@quiet_pillow
def test_validation_leaves_pillow_and_warning_globals_alone():
    filters, max_pixels = list(warnings.filters), Image.MAX_IMAGE_PIXELS
    load_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    for _, data, _ in CORPUS:
        slug_of(data)
    assert warnings.filters == filters
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == (max_pixels, load_truncated)


# -- mutations ----------------------------------------------------------------------------

SEEDS = [VALID[name] for name in ("png_rgb", "apng_3_frames", "jpeg_progressive", "webp_lossy", "webp_animated_3_frames", "gif_animated_3_frames")]


@quiet_pillow
@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.none() | st.floats(0, 1),
)
def test_mutated_images_never_escape_as_anything_but_a_documented_refusal(seed, edits, cut):
    data = bytearray(seed)
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    assert slug_of(bytes(data)) in {None, UNSUPPORTED, INVALID, DIMENSIONS}
