"""Upload validation: decide what an upload is from its bytes, and refuse what we must not store.

The order is fixed: size, magic number, Pillow restricted to the sniffed format, pixel and
frame limits, then the decode budget (what the decode would cost in memory and work, from the
headers alone), all before any decode; then a real decode of the first frame.
"""

import hashlib
import re
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO

import imagehash
import numpy as np
from PIL import Image

from goodeye.errors import ImageTooComplex, ImageTooLarge, ImageTooLargeDimensions, InvalidImage, UnsupportedImageType

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

# Modes the hash input may be shrunk in before it is made grey (see _phash); any
# other mode is first copied to grey at full size.
_REDUCIBLE_MODES = {"L", "RGB"}

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
    max_jpeg_scans: int = 100
    max_decode_bytes: int = 128 * 1024 * 1024  # memory the decode holds at once
    max_decode_samples: int = 1_000_000_000  # samples decoded, each progressive scan counted again


@dataclass(frozen=True)
class DecodeCost:
    """What decoding an image's first frame would take, estimated from its headers."""

    memory_bytes: int  # held at once: the decoded frame, or a multi-scan JPEG's coefficients
    samples: int  # processed: pixels × channels, once per pass over them
    jpeg_scans: int = 0


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
        # Only the first frame is ever decoded here, so frames do not multiply the cost.
        _check_decode_cost(_decode_cost(data, im), limits)

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
    except (InvalidImage, ImageTooLargeDimensions, ImageTooComplex, MemoryError):
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
    factor = (max(1, im.width // _HASH_INPUT_SIDE), max(1, im.height // _HASH_INPUT_SIDE))
    # Shrink before converting when averaging the image's own pixels is the same picture
    # (not for palettes, nor for alpha, which reduce() premultiplies), sparing a full-size copy.
    small = im.reduce(factor).convert("L") if im.mode in _REDUCIBLE_MODES else im.convert("L").reduce(factor)
    small = small.resize((_DCT_SIDE, _DCT_SIDE), Image.Resampling.LANCZOS)
    low = (_DCT @ np.asarray(small, dtype=np.float64) @ _DCT.T)[:_HASH_SIZE, :_HASH_SIZE]
    return str(imagehash.ImageHash(low > np.median(low)))


def _check_decode_cost(cost, limits):
    if cost.jpeg_scans > limits.max_jpeg_scans:
        raise ImageTooComplex(f"The JPEG has {cost.jpeg_scans} scans; the limit is {limits.max_jpeg_scans}.")
    if cost.memory_bytes > limits.max_decode_bytes:
        raise ImageTooComplex(
            f"Decoding the image would hold about {cost.memory_bytes // 2**20} MiB; "
            f"the limit is {limits.max_decode_bytes // 2**20} MiB."
        )
    if cost.samples > limits.max_decode_samples:
        raise ImageTooComplex(
            f"Decoding the image would process {cost.samples} samples; the limit is {limits.max_decode_samples}."
        )


def _decode_cost(data, im):
    """The DecodeCost of `im` (opened, not loaded, from `data`), from headers only."""
    if im.format == "JPEG":
        return _jpeg_cost(data)  # decoded in draft mode: the output is small, the scans are not
    pixels = im.width * im.height
    # Pillow holds the frame in its own layout; libwebp decodes into a buffer of its own
    # that Pillow then copies; the hash makes a full-size grey copy of most modes.
    frame_bytes = _pixel_bytes(im.mode) * (2 if im.format == "WEBP" else 1)
    memory = pixels * (frame_bytes + (0 if im.mode in _REDUCIBLE_MODES else 1))
    if im.format == "PNG":
        # The inflated rows (bit depth and channels as stored, so 16 bits count twice) are
        # what the decoder works through.
        bit_depth, colour_type = data[24], data[25]
        row_bytes = 1 + (im.width * _PNG_CHANNELS.get(colour_type, 4) * bit_depth + 7) // 8
        return DecodeCost(memory, im.height * row_bytes)
    return DecodeCost(memory, pixels * len(im.getbands()))


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _pixel_bytes(mode):
    # Pillow keeps four bytes per pixel for every multi-band mode, one for "1", "L" and
    # "P", and the sample size for the other single-band modes ("I;16": 2, "I", "F": 4).
    if Image.getmodebands(mode) > 1:
        return 4
    return 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4


# JPEG markers (ITU T.81 table B.1).
JPEG_SOS, JPEG_EOI = 0xDA, 0xD9
_JPEG_SOF = {*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0)}
_JPEG_PROGRESSIVE_SOF = {0xC2, 0xC6, 0xCA, 0xCE}
_JPEG_WITHOUT_LENGTH = {0x01, *range(0xD0, 0xDA)}
# 0xFF followed by what starts a marker: outside a scan anything but a fill byte or a
# stuffed zero; inside one, restart markers do not end the scan either.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xff]")
_JPEG_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")


def iter_jpeg_segments(data):
    """(marker, start, end) of each JPEG marker segment after SOI, up to and including EOI.

    A scan's segment runs on through its entropy-coded data. Bytes that start no marker
    are passed over, as libjpeg passes them: stray bytes between segments, 0xFF fill, and
    inside a scan a stuffed zero or a restart marker. The search is a regex, so a file
    that is nothing but stuffed zeros costs C time, not a Python loop per byte.
    """
    pos = 2
    while (match := _JPEG_MARKER.search(data, pos)) is not None:
        pos = match.start()
        marker = data[pos + 1]
        if marker in _JPEG_WITHOUT_LENGTH or pos + 4 > len(data):
            end = pos + 2
        else:
            end = pos + 2 + struct.unpack_from(">H", data, pos + 2)[0]
            if marker == JPEG_SOS:
                after_scan = _JPEG_MARKER_AFTER_SCAN.search(data, end)
                end = after_scan.start() if after_scan else len(data)
        yield marker, pos, end
        if marker == JPEG_EOI:
            return
        pos = end


def _jpeg_cost(data):
    # Hand-written because Pillow does not expose a JPEG's scans: a progressive file may
    # repeat a tiny scan thousands of times, and libjpeg walks every block of the image for
    # each one (seconds of CPU for a few hundred KB), even in draft mode. Counting the scans
    # and the blocks each one covers is what bounds that work before libjpeg starts.
    blocks = {}  # component id → 8×8 blocks at its sampling
    progressive = False
    scans = samples = 0
    for marker, start, end in iter_jpeg_segments(data):
        if marker in _JPEG_SOF and not blocks and end - start >= 10:
            progressive = marker in _JPEG_PROGRESSIVE_SOF
            blocks = _jpeg_component_blocks(data[start + 4:end])
        elif marker == JPEG_SOS and start + 5 <= len(data):
            scans += 1
            count = data[start + 4]
            components = data[start + 5:start + 5 + 2 * count:2]
            samples += 64 * sum(blocks.get(component, 0) for component in components)
    # With more than one scan (always, when progressive) libjpeg keeps every coefficient of
    # the image, 16 bits each, whatever the output scale; one scan streams through MCU rows.
    coefficients = 2 * 64 * sum(blocks.values()) if progressive or scans > 1 else 0
    return DecodeCost(coefficients, samples, scans)


def _jpeg_component_blocks(frame_header):
    """{component id: 8×8 blocks} from a SOF payload (precision, height, width, components)."""
    height, width, count = struct.unpack_from(">HHB", frame_header, 1)
    specs = [frame_header[6 + 3 * i:9 + 3 * i] for i in range(count) if 9 + 3 * i <= len(frame_header)]
    if not specs:
        return {}
    h_max = max(spec[1] >> 4 for spec in specs) or 1
    v_max = max(spec[1] & 15 for spec in specs) or 1
    return {
        spec[0]: _ceil(_ceil(width * (spec[1] >> 4), h_max), 8) * _ceil(_ceil(height * (spec[1] & 15), v_max), 8)
        for spec in specs
    }


def _ceil(a, b):
    return -(-a // b)
