"""A generated corpus of valid and hostile uploads, for the validator and the fuzz suite.

`hostile_corpus()` returns (name, bytes, expected_slug) triples; `expected_slug` is None
when the upload must be accepted. Everything is generated here (Pillow or byte surgery),
nothing is committed, and the whole corpus (~200 cases) builds in about half a second.

Decisions the expectations encode (README "The image API": the stored bytes are exactly the uploaded
bytes, and a file is what its magic number and a real decode say it is):

- Trailing bytes after a complete image are accepted and stored verbatim: a PNG with a
  ZIP appended, a JPEG with data after EOI, a real GIF whose header doubles as a
  JavaScript comment opener (`GIF89a/*...*/=1;alert(1)`). Each decodes completely, and
  they are served as image/* with `nosniff`, so the other reading never runs. Rejecting
  trailers would also reject cameras that append data (motion photos, MPO-like trailers).
- "Polyglots" that are not really images (the same JS trick without a decodable GIF
  behind it) are 422 `invalid_image`: the magic says GIF, the decode says no.
- Truncation: PNG must reach IEND (Pillow's `verify()`); a PNG cut inside IEND's own
  CRC is accepted because Pillow stops at the IEND type and every pixel is present.
  A GIF may lack its one-byte trailer (Pillow and browsers accept that) but not a
  block terminator. JPEG and WebP truncated anywhere are refused by their decoders.
- Huge declared dimensions are 422 `image_too_large_dimensions` whenever the format's
  header can be read; a WebP whose body cannot even be parsed is `invalid_image`.
- Corrupt EXIF is metadata damage, not image damage: accepted.
"""

import functools
import io
import struct
import zlib

from PIL import Image

TOO_LARGE = "image_too_large"
UNSUPPORTED = "unsupported_image_type"
INVALID = "invalid_image"
DIMENSIONS = "image_too_large_dimensions"
TOO_COMPLEX = "image_too_complex"

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def hostile_corpus():
    """Every case as a (name, bytes, expected_slug) triple; expected None means accepted."""
    return list(_corpus())


def valid_cases():
    """The accepted cases as (name, bytes, format, width, height, frames)."""
    return list(_valid())


@functools.cache
def _corpus():
    cases = [(name, data, None) for name, data, *_ in _valid()]
    cases += _polyglots() + _unsupported() + _magic_only() + _truncated() + _corrupt() + _bombs()
    names = [name for name, _, _ in cases]
    assert len(names) == len(set(names)), "corpus names must be unique"
    return tuple(cases)


# -- building blocks -------------------------------------------------------------------


def _picture(mode, size=(64, 48)):
    """A deterministic, non-flat picture in `mode` (flat images hide decoder bugs)."""
    w, h = size
    gray = Image.linear_gradient("L").resize(size)
    other = Image.radial_gradient("L").resize(size)
    rgb = Image.merge("RGB", (gray, other, gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    if mode == "RGB":
        return rgb
    if mode == "RGBA":
        return Image.merge("RGBA", (*rgb.split(), other))
    if mode == "P":
        return rgb.quantize(16)
    return rgb.convert(mode)


def _save(im, fmt, **params):
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def _frames(count, size=(16, 12)):
    return [Image.new("RGB", size, (i * 80 % 256, 255 - i * 40 % 256, i * 20 % 256)) for i in range(count)]


def _png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def make_png(width, height, bit_depth=8, color_type=2, idat=b"", chunks=()):
    """A PNG with these IHDR fields; `idat` is the (already compressed) IDAT payload."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    body = b"".join(_png_chunk(kind, payload) for kind, payload in chunks)
    return PNG_MAGIC + _png_chunk(b"IHDR", ihdr) + body + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _idat_payload(png):
    start = png.index(b"IDAT") - 4
    return png[start + 8 : start + 8 + struct.unpack_from(">I", png, start)[0]]


def _with_idat(png, payload):
    """`png` with its single IDAT payload replaced and the CRC recomputed."""
    start = png.index(b"IDAT") - 4
    end = start + 12 + len(_idat_payload(png))
    return png[:start] + _png_chunk(b"IDAT", payload) + png[end:]


def zlib_zeros(length, piece=4 * 1024 * 1024):
    """zlib data that inflates to `length` zero bytes, without compressing them all.

    After a full flush a raw deflate stream forgets its history, so compressing one
    piece of zeros once and repeating the output is a valid stream; only the Adler-32
    of the whole has to be computed. This keeps the 30000×30000 PNG at ~0.1 s, not ~0.6 s.
    """
    whole, rest = divmod(length, piece)
    zeros = bytes(piece)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(bytes(rest)) + compressor.flush()
    adler = 1
    for _ in range(whole):
        adler = zlib.adler32(zeros, adler)
    adler = zlib.adler32(bytes(rest), adler)
    return b"\x78\xda" + block * whole + tail + struct.pack(">I", adler)


def make_apng(width, height, frames, declared=None):
    """An RGB APNG of `frames` black frames, whose acTL claims `declared` (default: the truth)."""
    row = b"\x00" + bytes(3 * width)
    pixels = zlib.compress(row * height)
    chunks = [(b"acTL", struct.pack(">II", declared or frames, 0))]
    tail = b""
    seq = 0
    for index in range(frames):
        fctl = struct.pack(">IIIIIHHBB", seq, width, height, 0, 0, 1, 10, 0, 0)
        seq += 1
        if index == 0:
            chunks.append((b"fcTL", fctl))
        else:
            tail += _png_chunk(b"fcTL", fctl) + _png_chunk(b"fdAT", struct.pack(">I", seq) + pixels)
            seq += 1
    png = make_png(width, height, idat=pixels, chunks=chunks)
    iend = _png_chunk(b"IEND", b"")
    return png[: -len(iend)] + tail + iend


# One 1×1 GIF frame: LZW minimum code size 2, then one sub-block holding the codes
# clear(4), pixel 0, end(5) packed LSB-first, then the block terminator.
_GIF_1X1_PIXELS = b"\x02\x02\x44\x01\x00"


def make_gif(screen, frames, header=b"GIF89a", trailer=b";", between=b""):
    """A two-colour GIF whose frames are (left, top, width, height) descriptors."""
    # Every frame carries the pixel data of a 1×1 image: right for 1×1 frames, and
    # enough for larger ones that must be refused before anything is decoded.
    out = header + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    for left, top, w, h in frames:
        gce = b"\x21\xf9\x04\x00\x01\x00\x00\x00"  # 10 ms per frame
        out += between + gce + b"\x2c" + struct.pack("<HHHHB", left, top, w, h, 0) + _GIF_1X1_PIXELS
    return out + trailer


def _riff_chunk(kind, payload):
    pad = b"\x00" if len(payload) % 2 else b""
    return kind + struct.pack("<I", len(payload)) + payload + pad


def _webp(*chunks):
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


@functools.cache
def _vp8l_1x1():
    """The VP8L chunk of a 1×1 lossless WebP, to build animations from."""
    data = _save(Image.new("RGB", (1, 1), (200, 30, 30)), "WEBP", lossless=True)
    assert data[12:16] == b"VP8L"
    return data[12:]


def make_animated_webp(canvas, frames):
    """An animated WebP: `frames` 1×1 frames at the origin of a canvas of that size."""
    w, h = canvas
    vp8x = _riff_chunk(b"VP8X", bytes([0x02, 0, 0, 0]) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little"))
    anim = _riff_chunk(b"ANIM", b"\x00\x00\x00\x00\x00\x00")
    anmf_header = bytes(6) + (0).to_bytes(3, "little") * 2 + (100).to_bytes(3, "little") + b"\x00"
    anmf = _riff_chunk(b"ANMF", anmf_header + _vp8l_1x1())
    return _webp(vp8x, anim, anmf * frames)


@functools.cache
def _large_jpeg():
    """Big enough that the validator decodes it at a reduced scale (JPEG draft mode)."""
    return _save(_picture("RGB", (2048, 1536)), "JPEG", quality=80)


def _jpeg_with_size(width, height):
    """A real baseline JPEG whose SOF0 is patched to declare width × height."""
    data = bytearray(_save(_picture("RGB", (16, 16)), "JPEG", quality=80))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def _jpeg_with_app1(payload):
    data = _save(_picture("RGB", (32, 24)), "JPEG", quality=80)
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


@functools.cache
def jpeg_scan_bomb(side=7000, repeats=1000):
    """A progressive grey JPEG whose last, tiny AC scan comes `repeats` times: a few hundred KB
    that libjpeg walks whole once per scan (seconds of CPU at 7000×7000 and 1000 scans)."""
    data = _save(Image.new("L", (side, side)), "JPEG", progressive=True, quality=50)
    last_scan = data.rindex(b"\xff\xda")
    scan = data[last_scan:-2]  # up to EOI
    assert len(scan) < 200, "the last scan of an all-black progressive JPEG is a run of empty blocks"
    return data[:last_scan] + scan * repeats + data[-2:]


@functools.cache
def png_16bit_rgba(side=7000):
    """A 16-bit RGBA PNG of zeros: ~381 KB at 7000×7000 that Pillow decodes into 187 MiB."""
    return make_png(side, side, bit_depth=16, color_type=6, idat=zlib_zeros(side * (1 + side * 8)))


# -- accepted --------------------------------------------------------------------------


@functools.cache
def _valid():
    rgb = _picture("RGB")
    cases = [
        ("png_rgb", _save(rgb, "PNG"), "PNG", 64, 48, 1),
        ("png_rgba", _save(_picture("RGBA"), "PNG"), "PNG", 64, 48, 1),
        ("png_gray", _save(_picture("L"), "PNG"), "PNG", 64, 48, 1),
        ("png_1bit", _save(_picture("1"), "PNG"), "PNG", 64, 48, 1),
        ("png_palette_transparency", _save(_picture("P"), "PNG", transparency=0), "PNG", 64, 48, 1),
        ("png_16bit_gray", _save(_picture("L").convert("I;16"), "PNG"), "PNG", 64, 48, 1),
        ("png_16bit_rgb", make_png(3, 2, bit_depth=16, color_type=2, idat=zlib.compress((b"\x00" + bytes(range(18))) * 2)), "PNG", 3, 2, 1),
        ("png_interlaced", make_png(4, 4, idat=zlib.compress(b"\x00\x00\x00\x00" * 15)), "PNG", 4, 4, 1),
        ("png_1x1", _save(Image.new("RGB", (1, 1)), "PNG"), "PNG", 1, 1, 1),
        ("png_corrupt_exif", _save(rgb, "PNG", exif=b"II*\x00\xff\xff\xff\x7fgarbage"), "PNG", 64, 48, 1),
        ("apng_3_frames", _save(_frames(3)[0], "PNG", save_all=True, append_images=_frames(3)[1:]), "PNG", 16, 12, 3),
        ("apng_1000_frames_at_limit", make_apng(1, 1, 1000), "PNG", 1, 1, 1000),
        ("jpeg_rgb", _save(rgb, "JPEG", quality=85), "JPEG", 64, 48, 1),
        ("jpeg_gray", _save(_picture("L"), "JPEG"), "JPEG", 64, 48, 1),
        ("jpeg_progressive", _save(rgb, "JPEG", progressive=True), "JPEG", 64, 48, 1),
        ("jpeg_cmyk", _save(_picture("CMYK"), "JPEG"), "JPEG", 64, 48, 1),
        ("jpeg_444", _save(rgb, "JPEG", subsampling=0), "JPEG", 64, 48, 1),
        ("jpeg_2048x1536_scaled_decode", _large_jpeg(), "JPEG", 2048, 1536, 1),
        ("jpeg_with_exif", _save(rgb, "JPEG", exif=_exif_orientation(6)), "JPEG", 64, 48, 1),
        ("jpeg_corrupt_exif_garbage", _jpeg_with_app1(b"Exif\x00\x00" + bytes(range(256)) * 2), "JPEG", 32, 24, 1),
        ("jpeg_corrupt_exif_bad_ifd_offset", _jpeg_with_app1(b"Exif\x00\x00II*\x00\xff\xff\xff\x7f"), "JPEG", 32, 24, 1),
        ("jpeg_corrupt_exif_ifd_loop", _jpeg_with_app1(b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x69\x87\x04\x00\x01\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00"), "JPEG", 32, 24, 1),
        ("webp_lossy", _save(rgb, "WEBP", quality=80), "WEBP", 64, 48, 1),
        ("webp_lossless", _save(rgb, "WEBP", lossless=True), "WEBP", 64, 48, 1),
        ("webp_alpha", _save(_picture("RGBA"), "WEBP"), "WEBP", 64, 48, 1),
        ("webp_corrupt_exif", _save(rgb, "WEBP", exif=b"Exif\x00\x00\xff\xfe"), "WEBP", 64, 48, 1),
        ("webp_animated_3_frames", _save(_frames(3)[0], "WEBP", save_all=True, append_images=_frames(3)[1:]), "WEBP", 16, 12, 3),
        ("webp_animated_1000_frames_at_limit", make_animated_webp((4, 4), 1000), "WEBP", 4, 4, 1000),
        ("gif_static", _save(_picture("P"), "GIF"), "GIF", 64, 48, 1),
        ("gif87a", make_gif((1, 1), [(0, 0, 1, 1)], header=b"GIF87a"), "GIF", 1, 1, 1),
        ("gif_animated_3_frames", _save(_frames(3)[0], "GIF", save_all=True, append_images=_frames(3)[1:]), "GIF", 16, 12, 3),
        ("gif_1000_frames_at_limit", make_gif((1, 1), [(0, 0, 1, 1)] * 1000), "GIF", 1, 1, 1000),
        ("gif_without_trailer", make_gif((1, 1), [(0, 0, 1, 1)], trailer=b""), "GIF", 1, 1, 1),
        ("gif_with_comment_extension", make_gif((1, 1), [(0, 0, 1, 1)], between=b"\x21\xfe\x05hello\x00"), "GIF", 1, 1, 1),
        ("gif_frame_smaller_than_screen", make_gif((40, 30), [(5, 5, 1, 1)]), "GIF", 40, 30, 1),
    ]
    return tuple(cases + _valid_polyglots())


def _exif_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def _zip_archive():
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return out.getvalue()


def _valid_polyglots():
    png = _save(_picture("RGB"), "PNG")
    jpeg = _save(_picture("RGB"), "JPEG")
    # 0x2A2F little-endian is "/*": the screen width opens a JavaScript comment, and the
    # bytes after the trailer close it. Still a real 10799×1 GIF.
    gif_js = make_gif((0x2A2F, 1), [(0, 0, 1, 1)]) + b"*/=1;alert(document.domain);//"
    return [
        ("polyglot_png_with_zip_appended", png + _zip_archive(), "PNG", 64, 48, 1),
        ("polyglot_jpeg_with_html_after_eoi", jpeg + b"<html><script>alert(1)</script></html>", "JPEG", 64, 48, 1),
        ("polyglot_gif_js_real_gif", gif_js, "GIF", 0x2A2F, 1, 1),
        ("png_iend_crc_cut", png[:-2], "PNG", 64, 48, 1),
    ]


# -- refused ---------------------------------------------------------------------------


def _polyglots():
    return [
        ("polyglot_gif_js_not_an_image", b"GIF89a/*" + b"\x00" * 8 + b"*/=1;alert(document.domain);//", INVALID),
        ("polyglot_gif_js_classic", b"GIF89a=1;/*" + bytes(range(32)) + b"*/alert(1)", INVALID),
        ("polyglot_zip_with_png_appended", _zip_archive() + _save(_picture("RGB"), "PNG"), UNSUPPORTED),
        ("polyglot_html_then_png", b"<html><body>" + _save(_picture("RGB"), "PNG"), UNSUPPORTED),
        ("polyglot_png_magic_then_html", PNG_MAGIC + b"<html><script>alert(1)</script></html>", INVALID),
    ]


def _unsupported():
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'
    return [
        ("empty", b"", UNSUPPORTED),
        ("single_zero_byte", b"\x00", UNSUPPORTED),
        ("zero_bytes_1k", bytes(1024), UNSUPPORTED),
        ("svg", svg, UNSUPPORTED),
        ("svg_xml_prolog", b'<?xml version="1.0" encoding="UTF-8"?>\n' + svg, UNSUPPORTED),
        ("svg_utf8_bom", b"\xef\xbb\xbf" + svg, UNSUPPORTED),
        ("html", b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>", UNSUPPORTED),
        ("pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n", UNSUPPORTED),
        ("text", b"just some text, not an image\n", UNSUPPORTED),
        ("zip", _zip_archive(), UNSUPPORTED),
        ("gzip", b"\x1f\x8b\x08\x00" + bytes(16), UNSUPPORTED),
        ("avif", b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(32), UNSUPPORTED),
        ("heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(32), UNSUPPORTED),
        ("bmp", _save(_picture("RGB", (4, 4)), "BMP"), UNSUPPORTED),
        ("tiff", _save(_picture("RGB", (4, 4)), "TIFF"), UNSUPPORTED),
        ("ico", _save(_picture("RGB", (16, 16)), "ICO"), UNSUPPORTED),
        ("riff_wave", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28), UNSUPPORTED),
        ("gif88a", b"GIF88a" + make_gif((1, 1), [(0, 0, 1, 1)])[6:], UNSUPPORTED),
        ("png_magic_first_byte_wrong", b"\x88" + _save(_picture("RGB"), "PNG")[1:], UNSUPPORTED),
        ("png_magic_line_ending_mangled", PNG_MAGIC[:4] + b"\n\x1a\n" + _save(_picture("RGB"), "PNG")[8:], UNSUPPORTED),
        ("png_leading_space", b" " + _save(_picture("RGB"), "PNG"), UNSUPPORTED),
        ("png_cut_inside_magic", PNG_MAGIC[:5], UNSUPPORTED),
        ("jpeg_two_byte_soi_only", b"\xff\xd8", UNSUPPORTED),
        ("webp_riff_without_webp_tag", b"RIFF\x10\x00\x00\x00WEBQVP8L" + bytes(8), UNSUPPORTED),
    ]


def _magic_only():
    return [
        ("magic_only_png", PNG_MAGIC, INVALID),
        ("magic_only_jpeg", b"\xff\xd8\xff", INVALID),
        ("magic_only_jpeg_soi_eoi", b"\xff\xd8\xff\xd9", INVALID),
        ("magic_only_gif89a", b"GIF89a", INVALID),
        ("magic_only_gif87a", b"GIF87a", INVALID),
        ("magic_only_webp", b"RIFF\x04\x00\x00\x00WEBP", INVALID),
        ("magic_png_then_zeros", PNG_MAGIC + bytes(64), INVALID),
        ("magic_jpeg_then_zeros", b"\xff\xd8\xff" + bytes(64), INVALID),
        ("magic_gif_then_zeros", b"GIF89a" + bytes(64), INVALID),
        ("magic_webp_then_zeros", b"RIFF\x48\x00\x00\x00WEBP" + bytes(64), INVALID),
    ]


def _truncated():
    sources = {
        "png": _save(_picture("RGB"), "PNG"),
        "png_palette": _save(_picture("P"), "PNG", transparency=0),
        "apng": _save(_frames(3)[0], "PNG", save_all=True, append_images=_frames(3)[1:]),
        "jpeg": _save(_picture("RGB"), "JPEG", quality=90),
        "jpeg_progressive": _save(_picture("RGB"), "JPEG", progressive=True),
        "jpeg_large": _large_jpeg(),
        "webp_lossy": _save(_picture("RGB"), "WEBP"),
        "webp_lossless": _save(_picture("RGB"), "WEBP", lossless=True),
        "webp_animated": _save(_frames(3)[0], "WEBP", save_all=True, append_images=_frames(3)[1:]),
        "gif": _save(_picture("P"), "GIF"),
        "gif_animated": _save(_frames(3)[0], "GIF", save_all=True, append_images=_frames(3)[1:]),
    }
    cases = []
    for name, data in sources.items():
        # Just past the magic number, inside the header, across the body, and just
        # short of the end (PNG: inside IEND's type, so IEND is never seen).
        cuts = {16, 40, len(data) // 8, len(data) // 4, len(data) // 2, 3 * len(data) // 4, len(data) - 9}
        if name.startswith(("jpeg", "webp")):
            cuts.add(len(data) - 1)
        cases += [(f"truncated_{name}_at_{cut}_of_{len(data)}", data[:cut], INVALID) for cut in sorted(cuts)]
    gif = sources["gif"]
    cases.append(("truncated_gif_missing_block_terminator", gif[:-2], INVALID))
    return cases


def _corrupt():
    png = _save(_picture("RGB"), "PNG")
    idat = png.index(b"IDAT")
    bad_crc = bytearray(png)
    bad_crc[idat + 4] ^= 0xFF  # first IDAT payload byte, CRC left as it was
    payload = _idat_payload(png)
    bad_zlib_header = _with_idat(png, b"\x00\x00" + payload[2:])
    jpeg = _save(_picture("RGB"), "JPEG")
    sos = jpeg.index(b"\xff\xda")
    no_sos = jpeg[:sos] + b"\xff\xd9"
    webp = _save(_picture("RGB"), "WEBP", lossless=True)
    return [
        ("png_idat_crc_mismatch", bytes(bad_crc), INVALID),
        ("png_bad_zlib_header", bad_zlib_header, INVALID),
        ("png_zero_width", make_png(0, 10, idat=zlib.compress(b"")), INVALID),
        ("png_zero_height", make_png(10, 0, idat=zlib.compress(b"")), INVALID),
        ("png_bad_color_type", make_png(4, 4, bit_depth=8, color_type=7, idat=zlib.compress(bytes(20))), INVALID),
        ("png_bad_bit_depth", make_png(4, 4, bit_depth=5, color_type=2, idat=zlib.compress(bytes(20))), INVALID),
        ("png_no_idat_data", make_png(4, 4), INVALID),
        ("png_idat_too_short", make_png(64, 64, idat=zlib.compress(bytes(100))), INVALID),
        ("png_ihdr_truncated", PNG_MAGIC + struct.pack(">I", 13) + b"IHDR" + bytes(5), INVALID),
        ("jpeg_without_scan", no_sos, INVALID),
        ("jpeg_without_sof", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9", INVALID),
        ("jpeg_sof_zero_width", _jpeg_with_size(0, 16), INVALID),
        ("jpeg_scan_replaced_by_markers", jpeg[: sos + 2] + b"\xff\xd9" * 64, INVALID),
        ("webp_vp8l_bad_signature", webp[:20] + b"\x00" + webp[21:], INVALID),
        ("webp_riff_size_lies", webp[:4] + struct.pack("<I", 10_000_000) + webp[8:], INVALID),
        ("webp_vp8x_canvas_mismatch", _webp(_riff_chunk(b"VP8X", bytes(4) + (999).to_bytes(3, "little") * 2), _vp8l_1x1()), INVALID),
        ("gif_no_image_only_trailer", make_gif((1, 1), [], trailer=b";"), INVALID),
        ("gif_extension_runs_past_end", make_gif((1, 1), [(0, 0, 1, 1)], trailer=b"")[:-5] + b"\x21\xfe\xff\x01\x02", INVALID),
        ("gif_descriptor_cut", make_gif((1, 1), [(0, 0, 1, 1)], trailer=b"")[:-10], INVALID),
    ]


@functools.cache
def _bombs():
    return [
        # ~110 KB, a real PNG that inflates to 112 MB of 1-bit rows: 900 megapixels.
        ("bomb_png_1bit_30000x30000", make_png(30000, 30000, bit_depth=1, color_type=0, idat=zlib_zeros(30000 * 3751)), DIMENSIONS),
        ("bomb_png_declared_65535x65535", make_png(65535, 65535, idat=zlib.compress(b"")), DIMENSIONS),
        ("bomb_png_declared_2g_x_2g", make_png(2**31 - 1, 2**31 - 1, idat=zlib.compress(b"")), DIMENSIONS),
        # Above Pillow's warning threshold (~89 Mpx) but under its error threshold.
        ("bomb_png_declared_12000x12000", make_png(12000, 12000, idat=zlib.compress(b"")), DIMENSIONS),
        # One row over the 50 Mpx policy, far below anything Pillow itself would notice.
        ("bomb_png_declared_10000x5001", make_png(10000, 5001, idat=zlib.compress(b"")), DIMENSIONS),
        ("bomb_apng_declares_1m_frames", make_apng(1, 1, 1, declared=1_000_000), DIMENSIONS),
        ("bomb_apng_1001_frames", make_apng(1, 1, 1001), DIMENSIONS),
        ("bomb_jpeg_declared_65535x65535", _jpeg_with_size(65535, 65535), DIMENSIONS),
        ("bomb_jpeg_declared_10000x5001", _jpeg_with_size(10000, 5001), DIMENSIONS),
        ("bomb_webp_vp8x_canvas_16384x16384", make_animated_webp((16384, 16384), 1), DIMENSIONS),
        ("bomb_webp_canvas_10000x5001", make_animated_webp((10000, 5001), 1), DIMENSIONS),
        ("bomb_webp_1001_frames", make_animated_webp((4, 4), 1001), DIMENSIONS),
        ("bomb_gif_screen_65535x65535", make_gif((65535, 65535), [(0, 0, 1, 1)]), DIMENSIONS),
        ("bomb_gif_screen_10000x5001", make_gif((10000, 5001), [(0, 0, 1, 1)]), DIMENSIONS),
        ("bomb_gif_first_frame_overhangs_to_65535", make_gif((1, 1), [(0, 0, 65535, 65535)]), DIMENSIONS),
        ("bomb_gif_later_frame_overhangs_to_65535", make_gif((1, 1), [(0, 0, 1, 1), (65534, 65534, 1, 1)]), DIMENSIONS),
        ("bomb_gif_1001_frames", make_gif((1, 1), [(0, 0, 1, 1)] * 1001), DIMENSIONS),
        # Decode budget: 101 scans of a small image; 99 scans of 7000×7000 (over a billion
        # samples); a 16-bit RGBA PNG of 381 KB that decodes into 187 MiB.
        ("bomb_jpeg_101_scans", jpeg_scan_bomb(64, 96), TOO_COMPLEX),
        ("bomb_jpeg_99_scans_of_49_megapixels", jpeg_scan_bomb(7000, 94), TOO_COMPLEX),
        ("bomb_png_16bit_rgba_7000x7000", png_16bit_rgba(), TOO_COMPLEX),
        ("bomb_gif_5000_frames", make_gif((1, 1), [(0, 0, 1, 1)] * 5000), DIMENSIONS),
        # Counting must stop at the 1001st frame: the broken tail is never reached.
        ("bomb_gif_1001_frames_then_truncated", make_gif((1, 1), [(0, 0, 1, 1)] * 1001, trailer=b"\x21\xfe\xff"), DIMENSIONS),
    ]
