"""Lossless metadata stripping: drop what an image says about where, when and with what it was
made (EXIF, XMP, IPTC, comments, text chunks) and keep every byte that decides how it looks
(compressed image data, colour profiles, EXIF orientation, animation control).

Hand-written container walks (PNG chunks, JPEG segments, RIFF chunks, GIF blocks) because
Pillow drops metadata only by re-encoding, which changes a JPEG's or WebP's pixels; these
copy the compressed data untouched. The input has passed validate_image, so its container
is known to decode.
"""

import struct
import zlib

from PIL import Image

from goodeye.images.validation import (
    GIF_EXTENSION,
    GIF_IMAGE,
    GIF_TRAILER,
    JPEG_SOS,
    gif_header_size,
    iter_gif_blocks,
    iter_jpeg_segments,
)

EXIF_PREFIX = b"Exif\x00\x00"
ORIENTATION_TAG = 0x0112

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_METADATA_CHUNKS = {b"tEXt", b"zTXt", b"iTXt", b"tIME"}

_JPEG_APP0, _JPEG_APP1, _JPEG_APP15, _JPEG_COM = 0xE0, 0xE1, 0xEF, 0xFE
# The application segments decoders read: JFIF, the ICC colour profile, Adobe's colour
# transform. Every other APPn and COM, wherever it stands, is metadata; so is the
# multi-picture index (APP2 "MPF"), which goes with the pictures after the first.
_JPEG_KEPT_APPS = {0xE0: (b"JFIF\x00",), 0xE2: (b"ICC_PROFILE\x00",), 0xEE: (b"Adobe",)}

_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04

_GIF_KEPT_APPLICATIONS = (b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012")  # the loop count, the ICC profile


def strip_metadata(data: bytes, fmt: str) -> bytes:
    """The same image without its metadata; `fmt` is validate_image's format name."""
    return _STRIPPERS[fmt](data)


def _orientation_exif(payload):
    """A minimal EXIF (TIFF bytes, no prefix) holding only payload's orientation, or None if it has none."""
    exif = Image.Exif()
    try:
        exif.load(payload)
        orientation = exif.get(ORIENTATION_TAG)
    except Exception:
        # Pillow raises struct.error, SyntaxError, ValueError... on a malformed EXIF block;
        # such a block gives no orientation worth keeping and is dropped like the rest.
        return None
    # Only a SHORT 2..8 means a rotation or mirror; other types (RATIONAL, FLOAT...) are
    # malformed and could not be written back as a SHORT anyway.
    if type(orientation) is not int or orientation not in range(2, 9):
        return None
    kept = Image.Exif()
    kept[ORIENTATION_TAG] = orientation
    return kept.tobytes()[len(EXIF_PREFIX):]


def _strip_png(data):
    out = [_PNG_SIGNATURE]
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if kind == b"eXIf":
            exif = _orientation_exif(data[pos + 8:end - 4])
            if exif:
                out.append(struct.pack(">I4s", len(exif), kind) + exif + struct.pack(">I", zlib.crc32(kind + exif)))
        elif kind not in _PNG_METADATA_CHUNKS:
            out.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    return b"".join(out)


def _strip_jpeg(data):
    kept = []
    exif = None
    in_header = True  # before the first scan, where decoders read EXIF
    for marker, start, end in iter_jpeg_segments(data):
        # After EOI comes what is not this image: an MPO's other pictures (each with its own
        # EXIF) or data a phone appends, such as a motion photo's video. Browsers show the
        # first picture only, so the stripped file is that picture.
        payload = data[start + 4:end]
        if in_header and marker == _JPEG_APP1 and payload.startswith(EXIF_PREFIX):
            exif = exif or _orientation_exif(payload)
        if not (_JPEG_APP0 <= marker <= _JPEG_APP15 or marker == _JPEG_COM) or payload.startswith(
            _JPEG_KEPT_APPS.get(marker, ())
        ):
            kept.append(data[start:end])
        in_header = in_header and marker != JPEG_SOS
    if exif:
        app1 = EXIF_PREFIX + exif
        # EXIF belongs right after SOI, or after JFIF's APP0 when there is one.
        at = 1 if kept and kept[0][1] == _JPEG_APP0 else 0
        kept.insert(at, struct.pack(">BBH", 0xFF, _JPEG_APP1, len(app1) + 2) + app1)
    return data[:2] + b"".join(kept)


def _strip_webp(data):
    riff_end = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    chunks = []
    exif = None
    pos = 12
    while pos + 8 <= riff_end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        end = pos + 8 + size + (size & 1)  # chunks are padded to an even length
        if fourcc == b"EXIF":
            exif = _orientation_exif(data[pos + 8:pos + 8 + size])
        elif fourcc != b"XMP ":
            chunks.append(data[pos:end])
        pos = end
    if chunks and chunks[0].startswith(b"VP8X"):
        header = bytearray(chunks[0])
        header[8] &= ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF
        if exif:
            header[8] |= _VP8X_EXIF
            # The EXIF chunk comes after the image data (WebP container spec).
            chunks.append(struct.pack("<4sI", b"EXIF", len(exif)) + exif + b"\x00" * (len(exif) & 1))
        chunks[0] = bytes(header)
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _strip_gif(data):
    out = [data[:gif_header_size(data)]]
    for introducer, start, end in iter_gif_blocks(data):
        label = data[start + 1] if introducer == GIF_EXTENSION else None
        if label == 0xFE or (label == 0xFF and data[start + 3:start + 14] not in _GIF_KEPT_APPLICATIONS):
            continue  # a comment, or application data other than the loop count and ICC profile
        if introducer in (GIF_EXTENSION, GIF_IMAGE):
            out.append(data[start:end])  # stray bytes between blocks, which decoders skip, are not
    out.append(bytes([GIF_TRAILER]))
    return b"".join(out)


_STRIPPERS = {"PNG": _strip_png, "JPEG": _strip_jpeg, "WEBP": _strip_webp, "GIF": _strip_gif}
