"""More hostile uploads on top of tests/hostile_images.py: ≥300 cases in all, generated here.

`reliability_corpus()` returns (name, bytes, expected_slug) triples like `hostile_corpus()`;
expected None means accepted (201). What the extra cases add, and the decisions they encode
beyond those in tests/hostile_images.py:

- Truncation at every PNG chunk boundary (and inside each chunk), before every JPEG marker,
  at every RIFF chunk boundary of an extended WebP and at every GIF block boundary.
  A GIF cut right after a complete image block is a complete GIF without its optional
  trailer (hostile_images: accepted); cut anywhere else it is refused.
- Every other file type we know a magic number for, under an image name and an image
  Content-Type: 415. The name and declared type never matter.
- Polyglots whose image part is complete (markup in a PNG text chunk or a JPEG comment,
  archives or PDFs appended) are accepted and stored verbatim; they are served as image/*
  with nosniff. A polyglot whose first bytes are another format's is 415.
- Huge declared dimensions in every format's header: 422 image_too_large_dimensions before
  any pixel is decoded; a frame exactly at the pixel limit whose data is missing is
  422 invalid_image (it passes the size check and then fails to decode).
- Colour oddities (16-bit, 2/4-bit palettes, CMYK without Adobe marker, missing PLTE...)
  are accepted exactly when Pillow decodes them.
"""

import functools
import io
import random
import struct
import zlib

from PIL import Image

from tests.hostile_images import (
    DIMENSIONS,
    INVALID,
    PNG_MAGIC,
    UNSUPPORTED,
    _picture,
    _png_chunk,
    _save,
    hostile_corpus,
    make_animated_webp,
    make_gif,
    make_png,
)


def reliability_corpus():
    """tests/hostile_images.py's corpus plus this module's variants."""
    return list(_all())


@functools.cache
def _all():
    cases = list(hostile_corpus())
    cases += (
        _png_chunk_cuts() + _jpeg_marker_cuts() + _webp_chunk_cuts() + _gif_block_cuts()
        + _other_formats() + _more_polyglots() + _huge_dimensions() + _colour_oddities() + _exif_and_metadata()
    )
    names = [name for name, _, _ in cases]
    assert len(names) == len(set(names)), "corpus names must be unique"
    return tuple(cases)


# -- truncation at every structural boundary -------------------------------------------


def png_chunks(data):
    """(offset, type, total length) of every chunk of a PNG."""
    pos, out = len(PNG_MAGIC), []
    while pos + 8 <= len(data):
        length = struct.unpack_from(">I", data, pos)[0]
        out.append((pos, data[pos + 4 : pos + 8], 12 + length))
        pos += 12 + length
    return out


def _rich_png():
    """A palette PNG with text, gamma and transparency chunks and its pixels split over three IDATs."""
    im = _picture("P")
    base = _save(im, "PNG", transparency=0)
    chunks = png_chunks(base)
    idat = b"".join(base[o + 8 : o + n - 4] for o, kind, n in chunks if kind == b"IDAT")
    head = b"".join(base[o : o + n] for o, kind, n in chunks if kind not in (b"IDAT", b"IEND"))
    thirds = [idat[: len(idat) // 3], idat[len(idat) // 3 : 2 * len(idat) // 3], idat[2 * len(idat) // 3 :]]
    extra = _png_chunk(b"gAMA", struct.pack(">I", 45455)) + _png_chunk(b"tEXt", b"Comment\x00hello")
    return PNG_MAGIC + head[len(PNG_MAGIC) :] + extra + b"".join(_png_chunk(b"IDAT", t) for t in thirds) + _png_chunk(b"IEND", b"")


def _png_chunk_cuts():
    sources = {
        "rich": _rich_png(),
        "apng": _save(_frames(3)[0], "PNG", save_all=True, append_images=_frames(3)[1:]),
        "rgba16": _save(_picture("RGBA").convert("RGBA"), "PNG"),
    }
    cases = []
    for name, data in sources.items():
        for offset, kind, length in png_chunks(data):
            label = kind.decode("latin-1")
            # At the boundary, after the length, after the type, mid-payload, before the CRC.
            for where, cut in (("start", offset), ("len", offset + 4), ("type", offset + 8),
                               ("mid", offset + 8 + (length - 12) // 2), ("crc", offset + length - 4)):
                if kind == b"IEND" and where != "start" and where != "len":
                    continue  # cut inside IEND's own CRC: accepted, see hostile_images
                if 0 < cut < len(data):
                    cases.append((f"png_cut_{name}_{label}_{offset}_{where}", data[:cut], INVALID))
    return _unique(cases)


def jpeg_markers(data):
    """Offsets of every marker of a JPEG: header segments, then markers inside the scans."""
    pos, out = 2, [0]
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        out.append(pos)
        if marker == 0xDA:
            break
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    # Inside entropy-coded data a marker is 0xFF followed by anything but 0x00 (stuffing).
    for index in range(pos + 2, len(data) - 1):
        if data[index] == 0xFF and data[index + 1] not in (0x00, 0xFF):
            out.append(index)
    return sorted(set(out))


def _jpeg_marker_cuts():
    rgb = _picture("RGB", (96, 64))
    sources = {
        "baseline": _save(rgb, "JPEG", quality=85),
        "progressive": _save(rgb, "JPEG", progressive=True, quality=85),
        "restart": _save(rgb, "JPEG", quality=85, restart_marker_blocks=8),
        "exif": _save(rgb, "JPEG", quality=85, exif=_exif({0x0112: 3, 0x010F: "camera"})),
    }
    cases = []
    for name, data in sources.items():
        for offset in jpeg_markers(data):
            if offset < 3:
                continue  # shorter than the magic number: hostile_images covers those
            cases.append((f"jpeg_cut_{name}_before_marker_{offset}", data[:offset], INVALID))
            cases.append((f"jpeg_cut_{name}_inside_marker_{offset}", data[: offset + 1], INVALID))
    return _unique(cases)


def riff_chunks(data):
    """(offset, fourcc, total length) of every top-level chunk of a RIFF/WEBP file."""
    pos, out = 12, []
    while pos + 8 <= len(data):
        size = struct.unpack_from("<I", data, pos + 4)[0]
        out.append((pos, data[pos : pos + 4], 8 + size + (size & 1)))
        pos += 8 + size + (size & 1)
    return out


def _webp_chunk_cuts():
    rgb = _picture("RGB")
    sources = {
        "extended": _save(rgb, "WEBP", quality=80, exif=_exif({0x0112: 1}), icc_profile=b"\x00" * 128),
        "animated": _save(_frames(3)[0], "WEBP", save_all=True, append_images=_frames(3)[1:]),
        "alpha": _save(_picture("RGBA"), "WEBP", quality=80),
    }
    cases = []
    for name, data in sources.items():
        for offset, kind, length in riff_chunks(data):
            label = kind.decode("latin-1").strip()
            for where, cut in (("start", offset), ("header", offset + 8), ("mid", offset + length // 2)):
                if 12 < cut < len(data):
                    cases.append((f"webp_cut_{name}_{label}_{offset}_{where}", data[:cut], INVALID))
    return _unique(cases)


def gif_blocks(data):
    """(offset, kind, end) of every block of a GIF after the screen descriptor and palette."""
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    out = []
    while pos < len(data):
        introducer = data[pos]
        start = pos
        if introducer == 0x3B:
            out.append((start, "trailer", pos + 1))
            break
        if introducer == 0x21:
            pos += 2
        else:
            descriptor_flags = data[pos + 9]
            pos += 10 + (3 << ((descriptor_flags & 7) + 1) if descriptor_flags & 0x80 else 0) + 1
        while data[pos]:
            pos += 1 + data[pos]
        pos += 1
        out.append((start, "extension" if introducer == 0x21 else "image", pos))
    return out


def _gif_block_cuts():
    sources = {
        "animated": _save(_frames(4)[0], "GIF", save_all=True, append_images=_frames(4)[1:], comment=b"hello"),
        "static": _save(_picture("P"), "GIF"),
    }
    cases = []
    for name, data in sources.items():
        seen_image = False
        for start, kind, end in gif_blocks(data):
            # A cut at a block's start: complete GIF without trailer once an image was seen.
            cases.append((f"gif_cut_{name}_{kind}_{start}_start", data[:start], None if seen_image else INVALID))
            if end - start > 2:
                cases.append((f"gif_cut_{name}_{kind}_{start}_mid", data[: (start + end) // 2], INVALID))
            seen_image = seen_image or kind == "image"
    return _unique(cases)


# -- other formats under image names ---------------------------------------------------


def _other_formats():
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>'
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
              b"<svg>&lol2;</svg>")
    xxe = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><svg>&xxe;</svg>'
    rng = random.Random(8)
    samples = {
        "svg_onload": svg,
        "svg_billion_laughs": laughs,
        "svg_xxe": xxe,
        "svgz": _gzip(svg),
        "xhtml": b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>',
        "html_utf16": "\ufeff<html><script>alert(1)</script></html>".encode("utf-16-le"),
        "html_uppercase_doctype": b"<!DOCTYPE HTML><HTML><BODY ONLOAD=alert(1)>",
        "javascript": b"alert(document.cookie);\n",
        "json": b'{"data": "iVBORw0KGgo="}',
        "css": b"body { background: url(javascript:alert(1)) }",
        "php": b"<?php system($_GET['c']); ?>",
        "shell_script": b"#!/bin/sh\nrm -rf /\n",
        "elf": b"\x7fELF\x02\x01\x01" + bytes(57),
        "windows_pe": b"MZ\x90\x00" + bytes(60) + b"PE\x00\x00",
        "mach_o": b"\xcf\xfa\xed\xfe" + bytes(28),
        "java_class": b"\xca\xfe\xba\xbe\x00\x00\x00\x34",
        "wasm": b"\x00asm\x01\x00\x00\x00",
        "postscript": b"%!PS-Adobe-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
        "eps_binary": b"\xc5\xd0\xd3\xc6" + bytes(28),
        "pdf_with_js": b"%PDF-1.4\n1 0 obj<</OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj\n%%EOF",
        "psd": b"8BPS\x00\x01" + bytes(20),
        "jpeg2000": b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(20),
        "jpeg2000_codestream": b"\xff\x4f\xff\x51" + bytes(40),
        "jpeg_xl_codestream": b"\xff\x0a" + bytes(30),
        "jpeg_xl_container": b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(20),
        "jpeg_ls_lone_soi_marker": b"\xff\xd8\xf7",
        "qoi": b"qoif\x00\x00\x00\x01\x00\x00\x00\x01\x03\x00" + bytes(8),
        "tga": b"\x00\x00\x02" + bytes(9) + b"\x01\x00\x01\x00\x18\x00" + b"\x00\x00\xff",
        "pcx": b"\x0a\x05\x01\x08" + bytes(124),
        "wmf": b"\xd7\xcd\xc6\x9a" + bytes(18),
        "emf": b"\x01\x00\x00\x00" + bytes(36) + b" EMF",
        "dds": b"DDS \x7c\x00\x00\x00" + bytes(120),
        "openexr": b"\x76\x2f\x31\x01" + bytes(20),
        "radiance_hdr": b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 1\n\x00\x00\x00\x00",
        "ppm": b"P6\n1 1\n255\n\x00\x00\x00",
        "pgm_ascii": b"P2\n1 1\n255\n0\n",
        "xbm": b"#define x_width 1\n#define x_height 1\nstatic char x_bits[] = {0x00};\n",
        "xpm": b'/* XPM */\nstatic char *x[] = {"1 1 1 1", "a c #000000", "a"};\n',
        "bpg": b"BPG\xfb" + bytes(20),
        "flif": b"FLIF" + bytes(20),
        "icns": b"icns\x00\x00\x00\x08",
        "cursor": b"\x00\x00\x02\x00\x01\x00" + bytes(16),
        "riff_ani_cursor": b"RIFF\x10\x00\x00\x00ACONanih" + bytes(8),
        "riff_avi": b"RIFF\x10\x00\x00\x00AVI LIST" + bytes(8),
        "mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(16),
        "quicktime": b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ",
        "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + bytes(16),
        "ogg": b"OggS\x00\x02" + bytes(22),
        "flac": b"fLaC\x00\x00\x00\x22" + bytes(34),
        "mp3_id3": b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(16),
        "midi": b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60",
        "seven_zip": b"7z\xbc\xaf\x27\x1c" + bytes(26),
        "rar": b"Rar!\x1a\x07\x01\x00" + bytes(16),
        "tar": bytes(257) + b"ustar\x0000" + bytes(242),
        "bzip2": b"BZh91AY&SY" + bytes(16),
        "xz": b"\xfd7zXZ\x00" + bytes(16),
        "zstd": b"\x28\xb5\x2f\xfd" + bytes(16),
        "lz4": b"\x04\x22\x4d\x18" + bytes(16),
        "sqlite": b"SQLite format 3\x00" + bytes(84),
        "rtf": b"{\\rtf1\\ansi hello}",
        "ole_doc": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(24),
        "pem_certificate": b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "csv": b"a,b,c\n1,2,3\n",
        "utf32_text": "hello".encode("utf-32"),
        "ones_4k": b"\xff" * 4096,
        "zeros_2": bytes(2),
        "zeros_8": bytes(8),
        "zeros_64k": bytes(65536),
        "random_1k_seeded": bytes(rng.randrange(256) for _ in range(1024)),
        "random_64_seeded": bytes(rng.randrange(256) for _ in range(64)),
        "partial_png_magic_1": b"\x89",
        "partial_gif_magic": b"GIF89",
        "partial_riff": b"RIFF",
        "riff_webq": b"RIFF\x04\x00\x00\x00WEBQ",
        "gif_lowercase": b"gif89a" + bytes(20),
        "newline_then_png": b"\n" + _save(_picture("RGB", (4, 4)), "PNG"),
        "bom_then_png": b"\xef\xbb\xbf" + _save(_picture("RGB", (4, 4)), "PNG"),
        "nul_then_jpeg": b"\x00" + _save(_picture("RGB", (4, 4)), "JPEG"),
    }
    return [(f"other_{name}", data, UNSUPPORTED) for name, data in samples.items()]


def _more_polyglots():
    png = _save(_picture("RGB"), "PNG")
    jpeg = _save(_picture("RGB"), "JPEG")
    gif = _save(_picture("P"), "GIF")
    html = b"<html><body><script>alert(document.domain)</script></body></html>"
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    text_chunk = _png_chunk(b"tEXt", b"Comment\x00" + html)
    png_with_text = png[:33] + text_chunk + png[33:]
    php_chunk = _png_chunk(b"tEXt", b"Comment\x00<?php system($_GET['c']); ?>")
    com = b"\xff\xfe" + struct.pack(">H", len(html) + 2) + html
    gif_comment = gif[:-1] + b"\x21\xfe" + bytes([len(html[:255])]) + html[:255] + b"\x00;"
    return [
        ("polyglot_png_html_in_text_chunk", png_with_text, None),
        ("polyglot_png_php_in_text_chunk", png[:33] + php_chunk + png[33:], None),
        ("polyglot_jpeg_html_in_comment", jpeg[:2] + com + jpeg[2:], None),
        ("polyglot_gif_html_in_comment_extension", gif_comment, None),
        ("polyglot_png_with_pdf_appended", png + pdf, None),
        ("polyglot_jpeg_with_zip_appended", jpeg + _zip(), None),
        ("polyglot_gif_with_html_appended", gif + html, None),
        ("polyglot_pdf_then_png", pdf + png, UNSUPPORTED),
        ("polyglot_svg_then_png", b"<svg xmlns='http://www.w3.org/2000/svg'/>" + png, UNSUPPORTED),
        ("polyglot_gif_magic_then_svg", b"GIF89a<svg onload=alert(1)>", INVALID),
        ("polyglot_jpeg_soi_then_html", b"\xff\xd8\xff" + html, INVALID),
        ("polyglot_webp_magic_then_html", b"RIFF\x40\x00\x00\x00WEBP" + html, INVALID),
        ("polyglot_png_magic_then_pdf", PNG_MAGIC + pdf, INVALID),
    ]


# -- dimensions, colour, metadata ------------------------------------------------------


def _vp8l_with_size(width, height):
    """A lossless WebP whose VP8L header declares width × height (14 bits each)."""
    data = bytearray(_save(Image.new("RGB", (1, 1)), "WEBP", lossless=True))
    bits = struct.unpack_from("<I", data, 21)[0]
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | ((height - 1) << 14)
    struct.pack_into("<I", data, 21, bits)
    return bytes(data)


def _huge_dimensions():
    empty = zlib.compress(b"")
    return [
        ("huge_png_1_x_50000001", make_png(1, 50_000_001, idat=empty), DIMENSIONS),
        ("huge_png_50000001_x_1", make_png(50_000_001, 1, idat=empty), DIMENSIONS),
        ("huge_png_16bit_rgba_8000x8000", make_png(8000, 8000, bit_depth=16, color_type=6, idat=empty), DIMENSIONS),
        ("huge_png_palette_65535x65535", make_png(65535, 65535, bit_depth=8, color_type=3, idat=empty,
                                                  chunks=[(b"PLTE", bytes(3))]), DIMENSIONS),
        # Exactly at the 50 Mpx policy: passes the size check and the decode budget (grey, one
        # byte a pixel), then has no pixels to decode.
        ("png_10000x5000_at_limit_without_pixels", make_png(10000, 5000, color_type=0, idat=empty), INVALID),
        ("huge_webp_vp8l_16384x16384", _vp8l_with_size(16384, 16384), DIMENSIONS),
        ("huge_webp_vp8l_16384x3052", _vp8l_with_size(16384, 3052), DIMENSIONS),
        ("huge_gif_frame_8000x8000_on_1x1_screen", make_gif((1, 1), [(0, 0, 8000, 8000)]), DIMENSIONS),
        ("huge_gif_1000_frames_then_one_huge", make_gif((1, 1), [(0, 0, 1, 1)] * 999 + [(0, 0, 9000, 9000)]), DIMENSIONS),
        ("huge_webp_animated_canvas_16384x4000", make_animated_webp((16384, 4000), 2), DIMENSIONS),
        ("huge_webp_animated_2000_frames", make_animated_webp((2, 2), 2000), DIMENSIONS),
        # Beyond APNG's 2^31 frame range the acTL is invalid and the file is an ordinary PNG
        # (Pillow, like browsers, shows its default image): its real frames are two.
        ("apng_declaring_4g_frames_is_a_static_png", _apng_declaring(2**32 - 1), None),
    ]


def _apng_declaring(frames):
    png = _save(_frames(2)[0], "PNG", save_all=True, append_images=_frames(2)[1:])
    at = png.index(b"acTL") - 4
    return png[:at] + _png_chunk(b"acTL", struct.pack(">II", frames, 0)) + png[at + 20 :]


def _colour_oddities():
    rgb = _picture("RGB")
    cmyk = _save(_picture("CMYK"), "JPEG")
    adobe = cmyk.find(b"\xff\xee")
    cmyk_no_adobe = cmyk[:adobe] + cmyk[adobe + 2 + struct.unpack_from(">H", cmyk, adobe + 2)[0]:] if adobe > 0 else cmyk
    row = lambda w, bpp: b"\x00" + bytes(w * bpp)  # noqa: E731  (one filter byte + zero samples)
    palette4 = make_png(4, 4, bit_depth=4, color_type=3, idat=zlib.compress(row(2, 1) * 4), chunks=[(b"PLTE", bytes(range(48)))])
    return [
        ("odd_png_16bit_rgba", make_png(2, 2, bit_depth=16, color_type=6, idat=zlib.compress(row(2, 8) * 2)), None),
        ("odd_png_16bit_gray_alpha", make_png(2, 2, bit_depth=16, color_type=4, idat=zlib.compress(row(2, 4) * 2)), None),
        ("odd_png_8bit_gray_alpha", make_png(2, 2, bit_depth=8, color_type=4, idat=zlib.compress(row(2, 2) * 2)), None),
        ("odd_png_2bit_gray", make_png(4, 4, bit_depth=2, color_type=0, idat=zlib.compress(row(1, 1) * 4)), None),
        ("odd_png_4bit_palette", palette4, None),
        ("odd_png_palette_one_entry", make_png(2, 2, bit_depth=8, color_type=3, idat=zlib.compress(row(2, 1) * 2),
                                              chunks=[(b"PLTE", b"\xff\x00\x00")]), None),
        ("odd_png_palette_without_plte", make_png(2, 2, bit_depth=8, color_type=3, idat=zlib.compress(row(2, 1) * 2)), None),
        ("odd_png_16bit_palette_depth_invalid", make_png(2, 2, bit_depth=16, color_type=3, idat=zlib.compress(row(4, 1) * 2),
                                                        chunks=[(b"PLTE", bytes(6))]), INVALID),
        ("odd_png_gray_alpha_depth_2_invalid", make_png(2, 2, bit_depth=2, color_type=4, idat=zlib.compress(row(1, 1) * 2)), INVALID),
        ("odd_png_iccp_garbage", _save(rgb, "PNG", icc_profile=b"not a real profile" * 4), None),
        ("odd_jpeg_cmyk_without_adobe_marker", cmyk_no_adobe, None),
        ("odd_jpeg_gray_1x1", _save(Image.new("L", (1, 1)), "JPEG"), None),
        ("odd_jpeg_420_odd_size", _save(_picture("RGB", (17, 13)), "JPEG", subsampling=2), None),
        ("odd_jpeg_icc_garbage", _save(rgb, "JPEG", icc_profile=b"\x00" * 300), None),
        ("odd_gif_no_global_palette", _gif_without_palette(), None),
        ("odd_gif_interlaced", _save(_picture("P"), "GIF", interlace=True), None),
        # LZW codes are at most 12 bits, so a minimum code size of 13 cannot decode.
        ("odd_gif_lzw_code_size_13", make_gif((1, 1), [(0, 0, 1, 1)]).replace(b"\x02\x02\x44\x01\x00", b"\x0d\x02\x44\x01\x00"), INVALID),
        ("odd_webp_lossless_rgba_1x1", _save(Image.new("RGBA", (1, 1), (1, 2, 3, 0)), "WEBP", lossless=True), None),
    ]


def _gif_without_palette():
    out = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x00, 0, 0)
    local = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0x80) + b"\x00\x00\x00\xff\xff\xff"
    return out + local + b"\x02\x02\x44\x01\x00;"


def _exif(tags):
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    return exif.tobytes()


def _jpeg_with_segment(marker, payload):
    jpeg = _save(_picture("RGB", (32, 24)), "JPEG", quality=80)
    return jpeg[:2] + marker + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _exif_and_metadata():
    png = _save(_picture("RGB"), "PNG")
    jpeg = _save(_picture("RGB", (32, 24)), "JPEG", quality=80)
    xmp_xxe = (b"http://ns.adobe.com/xap/1.0/\x00<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
               b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>&e;</x:xmpmeta>")
    return [
        ("exif_jpeg_huge_count", _jpeg_with_segment(b"\xff\xe1", b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + bytes(12)), None),
        ("exif_jpeg_big_endian_garbage", _jpeg_with_segment(b"\xff\xe1", b"Exif\x00\x00MM\x00*" + bytes(range(200))), None),
        ("exif_jpeg_empty", _jpeg_with_segment(b"\xff\xe1", b"Exif\x00\x00"), None),
        ("exif_jpeg_wrong_tiff_magic", _jpeg_with_segment(b"\xff\xe1", b"Exif\x00\x00XX*\x00\x08\x00\x00\x00"), None),
        ("exif_jpeg_two_exif_segments", _jpeg_with_segment(b"\xff\xe1", b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00")[:2]
         + _jpeg_with_segment(b"\xff\xe1", b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00")[2:], None),
        ("xmp_jpeg_with_xxe", _jpeg_with_segment(b"\xff\xe1", xmp_xxe), None),
        ("exif_png_exif_chunk_garbage", png[:33] + _png_chunk(b"eXIf", b"MM\x00*\xff\xff\xff\xff") + png[33:], None),
        ("exif_jpeg_app1_length_past_end", jpeg[:2] + b"\xff\xe1\xff\xf0Exif\x00\x00", INVALID),
        # libjpeg skips a segment whose length field is below its own two bytes; the image decodes.
        ("exif_jpeg_app1_length_one_tolerated", jpeg[:2] + b"\xff\xe1\x00\x01" + jpeg[2:], None),
        ("exif_webp_chunk_past_end", _webp_with_trailing_chunk(b"EXIF", 10_000, b"Exif\x00\x00"), INVALID),
    ]


def _webp_with_trailing_chunk(kind, declared, payload):
    data = _save(_picture("RGB"), "WEBP", quality=80)
    body = data[12:] + kind + struct.pack("<I", declared) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


# -- helpers ---------------------------------------------------------------------------


def _frames(count, size=(16, 12)):
    return [Image.new("RGB", size, (i * 80 % 256, 255 - i * 40 % 256, i * 20 % 256)) for i in range(count)]


def _gzip(data):
    import gzip

    return gzip.compress(data, mtime=0)


def _zip():
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("x.html", "<script>alert(1)</script>")
    return out.getvalue()


def _unique(cases):
    """Drop cases whose bytes another case already has (cuts can coincide)."""
    seen, out = set(), []
    for name, data, slug in cases:
        if data not in seen:
            seen.add(data)
            out.append((name, data, slug))
    return out
