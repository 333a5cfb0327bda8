"""Upload validation: decide what an upload is from its bytes, and refuse what we must not store.

The order is fixed (DESIGN §4, §8): size, magic number, Pillow restricted to the sniffed
format, pixel and frame limits before any decode, then a real decode of the first frame.
"""

import hashlib
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO

import imagehash
import numpy as np
from PIL import Image

from goodeye.errors import ImageTooLarge, ImageTooLargeDimensions, InvalidImage, UnsupportedImageType

# Pillow format name → (content type, file extension).
_FORMATS = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"),
}

# imagehash.phash shrinks to 32×32 with Lanczos straight from full size, about a
# second on a 50-megapixel frame. Shrinking first to about this many pixels a side
# (JPEG's scaled decode, then a box reduce) is linear and cheap; on test photos it
# changed no hash bit at 512, while at 256 a few hashes moved by 2 bits.
_HASH_INPUT_SIDE = 512

# imagehash.phash, with its 32×32 DCT-II (scipy.fftpack.dct's unnormalised type 2)
# done as a matrix product in numpy: the same hash, without loading scipy (about
# 20 MB in every gunicorn worker) for one tiny transform.
_HASH_SIZE = 8
_DCT_SIDE = 32
_DCT = 2 * np.cos(np.pi * np.outer(np.arange(_DCT_SIDE), 2 * np.arange(_DCT_SIDE) + 1) / (2 * _DCT_SIDE))


@dataclass(frozen=True)
class ImageLimits:
    """Upload limits; the defaults are the documented policy."""

    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000  # per frame
    max_frames: int = 1000


@dataclass(frozen=True)
class ImageInfo:
    """What validation learned about an accepted upload."""

    format: str
    content_type: str
    ext: str
    width: int
    height: int
    frames: int
    size_bytes: int
    sha256: str
    phash: str


def sniff_format(data: bytes) -> str | None:
    """Name the accepted format the magic number claims ("PNG", "JPEG", "WEBP", "GIF"), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def validate_image(data: bytes, limits: ImageLimits) -> ImageInfo:
    """Accept the bytes as a PNG, JPEG, WebP or GIF image within `limits`, or raise why not."""
    if not data:
        raise UnsupportedImageType("The file is empty.")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"The image is {len(data)} bytes; the limit is {limits.max_bytes} bytes.")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedImageType("Only PNG, JPEG, WebP and GIF images are accepted; these bytes are none of them.")

    with _decoding(fmt, limits):
        im = _open(data, fmt)
        width, height = im.size
        if width < 1 or height < 1:
            raise InvalidImage(f"The {fmt} image declares no pixels ({width}×{height}).")
        _check_pixels(width, height, limits)
        # PNG (acTL), WebP (the demuxer) and JPEG (MPO index) state their frame count up
        # front. A GIF does not, and Pillow walks the whole file to find it, so we count
        # GIF frames ourselves, with a bound (see _count_gif_frames).
        frames = _count_gif_frames(data, im.size, limits) if fmt == "GIF" else getattr(im, "n_frames", 1)
        if frames > limits.max_frames:
            raise ImageTooLargeDimensions(f"The image has {frames} frames; the limit is {limits.max_frames}.")

        # verify() is Pillow's cheap integrity check (for PNG: every chunk's CRC up to
        # IEND; a no-op elsewhere). It leaves the image unusable, hence the second open.
        im.verify()
        im = _open(data, fmt)
        if fmt == "JPEG":
            # libjpeg still entropy-decodes every scan at a reduced scale, so this stays a
            # full integrity check while sparing the full-size IDCT and memory.
            im.draft("L", (_HASH_INPUT_SIDE, _HASH_INPUT_SIDE))
        im.load()
        phash = _phash(im)

    content_type, ext = _FORMATS[fmt]
    return ImageInfo(
        format=fmt,
        content_type=content_type,
        ext=ext,
        width=width,
        height=height,
        frames=frames,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        phash=phash,
    )


@contextmanager
def _decoding(fmt, limits):
    """Map whatever Pillow raises on hostile bytes to the documented 422s."""
    try:
        yield
    except (InvalidImage, ImageTooLargeDimensions, MemoryError):
        # Our own verdicts pass through; a MemoryError is the server's state, not the file's.
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (2× Image.MAX_IMAGE_PIXELS) can fire inside open() before
        # our check sees the size; the warning only arrives as an exception if the
        # process turned warnings into errors. Either way it is a bomb, not a 500.
        raise ImageTooLargeDimensions(
            f"The image declares more pixels than the limit of {limits.max_pixels} per frame."
        ) from exc
    except Exception as exc:
        # Plugins raise OSError, SyntaxError, ValueError, EOFError, struct.error,
        # IndexError, TypeError, AssertionError... on malformed input. Only Pillow code
        # on these bytes runs inside this block, so each of them means "does not decode".
        raise InvalidImage(f"The bytes start like a {fmt} image but do not decode as one.") from exc


def _open(data, fmt):
    # Only the sniffed format's plugin may read the bytes, so a file cannot reach a
    # decoder other than the one its magic number names.
    return Image.open(BytesIO(data), formats=[fmt])


def _check_pixels(width, height, limits):
    if width * height > limits.max_pixels:
        raise ImageTooLargeDimensions(
            f"A frame is {width}×{height} = {width * height} pixels; the limit is {limits.max_pixels}."
        )


GIF_EXTENSION, GIF_IMAGE, GIF_TRAILER = 0x21, 0x2C, 0x3B


def _count_gif_frames(data, canvas, limits):
    # Hand-written (GIF89a spec §§17-27) because Pillow has no bounded frame count:
    # `n_frames` walks every frame of the file (a 25 MiB upload can hold a million) and
    # `seek()` decodes each frame on the way. This stops at max_frames + 1, never
    # decodes, and also checks every frame's extent, which Pillow grows the canvas to
    # fit only when it reaches that frame.
    width, height = canvas
    frames = 0
    for introducer, start, _end in iter_gif_blocks(data):
        if introducer == GIF_IMAGE:
            left, top, w, h, _flags = struct.unpack_from("<4HB", data, start + 1)
            frames += 1
            _check_pixels(max(width, left + w), max(height, top + h), limits)
            if frames > limits.max_frames:
                raise ImageTooLargeDimensions(f"The image has more than {limits.max_frames} frames.")
    if frames == 0:
        raise InvalidImage("The GIF file holds no image.")
    return frames


def gif_header_size(data):
    """The bytes of a GIF's header, screen descriptor and global colour table."""
    return 13 + _gif_palette_size(data[10])


def iter_gif_blocks(data):
    """(introducer, start, end) of each block after the GIF's header, up to the trailer.

    Lengths that run past the end raise InvalidImage (truncated); a missing trailer is
    tolerated, and a stray byte between blocks is a block of its own, as Pillow and
    browsers skip it.
    """
    start = gif_header_size(data)
    while start < len(data) and data[start] != GIF_TRAILER:
        introducer = data[start]
        if introducer == GIF_EXTENSION:  # a label, then data sub-blocks
            end = _skip_gif_sub_blocks(data, start + 2)
        elif introducer == GIF_IMAGE:  # descriptor, local colour table, LZW code size, data sub-blocks
            if start + 10 > len(data):
                raise InvalidImage("The GIF image is truncated.")
            end = _skip_gif_sub_blocks(data, start + 10 + _gif_palette_size(data[start + 9]) + 1)
        else:
            end = start + 1
        yield introducer, start, end
        start = end


def _gif_palette_size(flags):
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _skip_gif_sub_blocks(data, pos):
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
    raise InvalidImage("The GIF image is truncated.")


def _phash(im):
    gray = im.convert("L")
    factor = (max(1, gray.width // _HASH_INPUT_SIDE), max(1, gray.height // _HASH_INPUT_SIDE))
    small = gray.reduce(factor).resize((_DCT_SIDE, _DCT_SIDE), Image.Resampling.LANCZOS)
    low = (_DCT @ np.asarray(small, dtype=np.float64) @ _DCT.T)[:_HASH_SIZE, :_HASH_SIZE]
    return str(imagehash.ImageHash(low > np.median(low)))
