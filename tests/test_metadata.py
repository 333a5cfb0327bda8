"""Lossless metadata stripping (goodeye/images/metadata.py) over real files with every kind of metadata."""

import io
import random
import struct

import pytest
from PIL import Image, ImageSequence

from goodeye.errors import GoodeyeError, InvalidImage
from goodeye.images.metadata import EXIF_PREFIX, strip_metadata
from goodeye.images.validation import ImageLimits, validate_image
from tests import factories
from tests.factories import ORIENTATION, SECRET, image_with_metadata

FORMATS = ["PNG", "JPEG", "WEBP", "GIF"]


def frames_of(data):
    """Every decoded frame's pixels, and the per-frame duration."""
    with Image.open(io.BytesIO(data)) as im:
        return [(frame.convert("RGBA").tobytes(), frame.info.get("duration")) for frame in ImageSequence.Iterator(im)]


def opened(data):
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize("fmt, frames", [(fmt, 1) for fmt in FORMATS] + [("WEBP", 3), ("GIF", 3)])
def test_every_copy_of_the_secret_goes_and_every_pixel_stays(fmt, frames):
    original = image_with_metadata(fmt, frames)
    assert SECRET in original

    stripped = strip_metadata(original, fmt)

    assert SECRET not in stripped and b"Secret Camera" not in stripped
    assert frames_of(stripped) == frames_of(original)
    info = validate_image(stripped, ImageLimits())
    assert (info.format, info.frames) == (fmt, frames)
    assert len(stripped) < len(original)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_orientation_and_colour_profile_are_kept_and_nothing_else_of_exif(fmt):
    stripped = opened(strip_metadata(image_with_metadata(fmt), fmt))
    exif = stripped.getexif()
    assert dict(exif) == {0x0112: ORIENTATION}
    assert exif.get_ifd(0x8825) == {}
    assert stripped.info["icc_profile"] == factories.srgb_profile()


def test_png_text_and_time_chunks_go():
    stripped = strip_metadata(image_with_metadata("PNG"), "PNG")
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"tIME"):
        assert chunk not in stripped
    assert b"iCCP" in stripped and b"eXIf" in stripped


def test_jpeg_keeps_jfif_first_then_the_new_exif_and_drops_comments_xmp_and_photoshop():
    stripped = strip_metadata(image_with_metadata("JPEG"), "JPEG")
    assert stripped[2:4] == b"\xff\xe0" and stripped[6:11] == b"JFIF\x00"
    app1 = 4 + int.from_bytes(stripped[4:6], "big")
    assert stripped[app1:app1 + 2] == b"\xff\xe1" and stripped[app1 + 4:app1 + 10] == b"Exif\x00\x00"
    for gone in (b"http://ns.adobe.com/xap/1.0/", b"Photoshop 3.0", b"\xff\xfe"):
        assert gone not in stripped[:stripped.index(b"\xff\xda")]


def test_webp_header_flags_follow_the_chunks():
    stripped = strip_metadata(image_with_metadata("WEBP"), "WEBP")
    assert int.from_bytes(stripped[4:8], "little") == len(stripped) - 8
    flags = stripped[20]
    assert flags & 0x08 and not flags & 0x04  # EXIF (orientation only) yes, XMP no
    assert b"XMP " not in stripped


def test_gif_keeps_its_loop_and_drops_comments_and_application_data():
    original = image_with_metadata("GIF", frames=3)
    stripped = opened(strip_metadata(original, "GIF"))
    assert stripped.info["loop"] == 0 and stripped.n_frames == 3
    assert b"XMP DataXMP" not in strip_metadata(original, "GIF")


def test_an_mpo_keeps_its_first_picture_only():
    first, second = Image.radial_gradient("L").convert("RGB"), Image.linear_gradient("L").convert("RGB")
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[second], exif=factories.secret_exif())
    original = out.getvalue()
    assert original.count(SECRET) == 2 and validate_image(original, ImageLimits()).frames == 2

    stripped = strip_metadata(original, "JPEG")

    assert SECRET not in stripped and b"MPF\x00" not in stripped
    assert validate_image(stripped, ImageLimits()).frames == 1
    assert frames_of(stripped) == frames_of(original)[:1]


def test_what_a_phone_appends_after_a_progressive_jpeg_goes():
    out = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").save(out, "JPEG", progressive=True, exif=factories.secret_exif())
    photo = out.getvalue()
    motion_photo = photo + b"\x00\x00\x00\x18ftypmp42" + SECRET  # a video after the JPEG's EOI
    stripped = strip_metadata(motion_photo, "JPEG")
    assert SECRET not in stripped and stripped.endswith(b"\xff\xd9")
    assert frames_of(stripped) == frames_of(photo)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_image_without_metadata_is_left_byte_for_byte(fmt):
    plain = factories.image_bytes(fmt)
    assert strip_metadata(plain, fmt) == plain


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_an_upright_image_keeps_no_exif_at_all(fmt):
    exif = Image.Exif()
    exif[0x0112] = 1
    exif[0x013B] = SECRET.decode()
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, fmt, exif=exif.tobytes())
    stripped = strip_metadata(out.getvalue(), fmt)
    assert SECRET not in stripped and b"Exif" not in stripped and b"eXIf" not in stripped
    assert dict(opened(stripped).getexif()) == {}


@pytest.mark.parametrize("fmt", FORMATS)
def test_stripping_twice_changes_nothing_more(fmt):
    once = strip_metadata(image_with_metadata(fmt), fmt)
    assert strip_metadata(once, fmt) == once


def test_a_malformed_exif_block_is_dropped_not_fatal():
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", exif=b"Exif\x00\x00MM\x00*garbage" + SECRET)
    stripped = strip_metadata(out.getvalue(), "JPEG")
    assert SECRET not in stripped
    validate_image(stripped, ImageLimits())


def test_bytes_after_the_end_of_a_png_are_dropped():
    polyglot = factories.png() + b"<html>" + SECRET
    stripped = strip_metadata(polyglot, "PNG")
    assert stripped.endswith(b"IEND\xaeB`\x82") and SECRET not in stripped


# Not PNG: its chunk CRCs make validation refuse every damaged file before stripping.
@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "GIF"])
def test_damaged_files_that_still_validate_strip_to_valid_images_or_a_422(fmt):
    rng = random.Random(fmt)
    original = image_with_metadata(fmt, frames=2 if fmt in ("WEBP", "GIF") else 1)
    stripped_some = 0
    for _ in range(400):
        damaged = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            validate_image(bytes(damaged), ImageLimits())
        except GoodeyeError:
            continue
        try:
            validate_image(strip_metadata(bytes(damaged), fmt), ImageLimits())
        except InvalidImage:
            pass
        stripped_some += 1
    assert stripped_some > 0


def _tiff_with_orientation(tag_type, value):
    """Raw EXIF (little-endian TIFF) whose only entry is an orientation of any TIFF type."""
    header = struct.pack("<2sHI", b"II", 42, 8) + struct.pack("<H", 1)
    if len(value) <= 4:
        return EXIF_PREFIX + header + struct.pack("<HHI", 0x0112, tag_type, 1) + value.ljust(4, b"\0") + bytes(4)
    return EXIF_PREFIX + header + struct.pack("<HHII", 0x0112, tag_type, 1, 26) + bytes(4) + value


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("tag_type,value", [(5, struct.pack("<II", 6, 1)), (11, struct.pack("<f", 6.0)), (1, b"\x06")],
                         ids=["rational", "float", "byte"])
def test_an_orientation_that_is_not_a_short_is_dropped_not_a_crash(fmt, tag_type, value):
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 8, 7)).save(out, fmt, exif=_tiff_with_orientation(tag_type, value))
    stripped = strip_metadata(out.getvalue(), fmt)
    assert dict(opened(stripped).getexif()) == {}
    assert frames_of(stripped) == frames_of(out.getvalue())


def _jpeg_with(segment, before, nth=1):
    """A progressive JPEG with `segment` inserted before its nth `before` marker."""
    out = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").save(out, "JPEG", progressive=True)
    data = out.getvalue()
    at = -1
    for _ in range(nth):
        at = data.index(before, at + 1)
    return data[:at] + segment + data[at:], data


@pytest.mark.parametrize("segment", [factories.jpeg_segment(0xFE, SECRET), factories.jpeg_segment(0xE1, EXIF_PREFIX + b"II*\0" + SECRET)],
                         ids=["comment", "exif"])
def test_metadata_between_the_scans_of_a_progressive_jpeg_goes(segment):
    damaged, clean = _jpeg_with(segment, b"\xff\xda", nth=2)
    assert validate_image(damaged, ImageLimits())
    stripped = strip_metadata(damaged, "JPEG")
    assert SECRET not in stripped and frames_of(stripped) == frames_of(clean)


def test_stray_bytes_before_a_segment_do_not_shield_the_metadata_after_them():
    photo = image_with_metadata("JPEG")
    app0_end = 4 + int.from_bytes(photo[4:6], "big")
    damaged = photo[:app0_end] + b"\x00\x17" + photo[app0_end:]  # libjpeg skips stray bytes
    assert validate_image(damaged, ImageLimits())
    stripped = strip_metadata(damaged, "JPEG")
    assert SECRET not in stripped and b"Secret Camera" not in stripped
    assert frames_of(stripped) == frames_of(photo)


def test_a_gif_keeps_its_colour_profile():
    profile = factories.srgb_profile()
    blocks = b"".join(bytes([len(profile[i:i + 255])]) + profile[i:i + 255] for i in range(0, len(profile), 255))
    gif = factories.gif()
    with_icc = gif[:-1] + b"\x21\xff\x0bICCRGBG1012" + blocks + b"\x00" + gif[-1:]
    stripped = strip_metadata(with_icc, "GIF")
    assert profile[:64] in stripped and frames_of(stripped) == frames_of(gif)
