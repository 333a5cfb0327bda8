"""Small real images made on the fly."""

import functools
import io
import random
import struct
import zlib

from PIL import Image, ImageCms, PngImagePlugin


def image_bytes(fmt="PNG", size=(64, 48), color=None, **save_args):
    """Encode a small image; a random colour unless one is given, so bytes differ between calls."""
    color = color or tuple(random.randrange(256) for _ in range(3))
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt, **save_args)
    return buffer.getvalue()


def png(size=(64, 48), color=None):
    """A PNG."""
    return image_bytes("PNG", size, color)


def jpeg(size=(64, 48), color=None):
    """A JPEG."""
    return image_bytes("JPEG", size, color, quality=90)


def webp(size=(64, 48), color=None):
    """A WebP."""
    return image_bytes("WEBP", size, color)


def gif(size=(64, 48), color=None):
    """A GIF."""
    return image_bytes("GIF", size, color)


# What a photo says about its maker: every copy of it must be gone after stripping.
SECRET = b"Jane Doe"
ORIENTATION = 6  # rotate 90° clockwise to display


def secret_exif():
    """EXIF with an orientation, a camera, an artist and a GPS position."""
    exif = Image.Exif()
    exif[0x0112] = ORIENTATION
    exif[0x010F] = "Secret Camera Co"
    exif[0x013B] = SECRET.decode()
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (4.0, 53.0, 2.0)}
    return exif.tobytes()


@functools.cache
def srgb_profile():
    """An ICC colour profile, which stripping must keep (the same bytes all run: lcms stamps each with the time)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _png_chunk(kind, body):
    return struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", zlib.crc32(kind + body))


def jpeg_segment(marker, payload):
    """A JPEG marker segment: 0xFF, the marker, the length, the payload."""
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def image_with_metadata(fmt, frames=1):
    """A PNG, JPEG, WebP or GIF carrying SECRET in every kind of metadata its format has."""
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + SECRET + b"</x:xmpmeta>"
    pictures = [Image.radial_gradient("L").convert("RGB").rotate(15 * n) for n in range(frames)]
    out = io.BytesIO()
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Author", SECRET.decode())
        text.add_text("Comment", SECRET.decode(), zip=True)
        text.add_itxt("Description", SECRET.decode(), lang="en")
        pictures[0].save(out, "PNG", pnginfo=text, exif=secret_exif(), icc_profile=srgb_profile())
        data = out.getvalue()
        tail = data.index(b"IEND") - 4
        return data[:tail] + _png_chunk(b"tIME", struct.pack(">HBBBBB", 2026, 11, 21, 12, 0, 0)) + data[tail:]
    if fmt == "JPEG":
        pictures[0].save(out, "JPEG", exif=secret_exif(), xmp=xmp, comment=SECRET, icc_profile=srgb_profile(), quality=90)
        photoshop = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">I", len(SECRET)) + SECRET
        data = out.getvalue()
        return data[:2] + jpeg_segment(0xED, photoshop) + data[2:]  # right after SOI
    if fmt == "WEBP":
        pictures[0].save(out, "WEBP", save_all=frames > 1, append_images=pictures[1:], exif=secret_exif(), xmp=xmp,
                         icc_profile=srgb_profile(), quality=80)
        return out.getvalue()
    if fmt == "GIF":
        pictures[0].save(out, "GIF", save_all=frames > 1, append_images=pictures[1:], loop=0, duration=70, comment=SECRET)
        data = out.getvalue()
        # An XMP application extension (what Photoshop writes), just before the trailer.
        xmp_block = b"\x21\xff\x0bXMP DataXMP" + bytes([len(xmp)]) + xmp + b"\x00"
        return data[:-1] + xmp_block + data[-1:]
    raise ValueError(fmt)
