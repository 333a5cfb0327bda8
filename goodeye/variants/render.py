"""Render a variant from an original's bytes with Pillow, decoding no more than the output needs.

A JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still covers
the output (`draft`), every resize first shrinks by whole factors with
`reduce`, and the full-size decode is freed before the resize and the encode:
a 12-megapixel photo asked at 640 pixels never exists at full size in memory,
and a 50-megapixel PNG (which has no scaled decode) is held once, briefly. Only the colour profile survives from the
original's metadata; EXIF orientation is applied to the pixels.
"""

import io
from dataclasses import dataclass, replace

from PIL import Image, ImageCms, ImageOps, ImageSequence

from goodeye.errors import ImageTooLargeDimensions, InvalidImage

PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF", "avif": "AVIF"}

# Pillow registers the WebP and AVIF encoders on the first save in such a format by importing
# every one of its plugins: 40 ms, measured, that a worker's first render would otherwise pay.
Image.init()

# Formats that hold an animation; an animated original keeps it in WebP and in its own format.
ANIMATED_FORMATS = ("webp", "gif", "png")

# Keeping an animation decodes every frame at full size, whatever the output's size:
# 20 frames of 4000×4000 (a 1 KB lossless WebP) took 6 s of CPU for a 128-wide variant.
# An animation whose frames add up to more than this many times GOODEYE_MAX_PIXELS gives
# its first frame instead, so no render costs much more than the largest still (a
# 50-megapixel PNG: about 1 s; 100 million animation pixels: 1 to 2 s, measured).
# Bounded here rather than at upload: serving the original costs no decode, files
# stored before this bound are covered too, and an oversized animation still gets
# a thumbnail.
ANIMATION_DECODE_FACTOR = 2

# Chosen by measurement on the bench's photo-like sources: AVIF at speed 8 encoded a
# 10-megapixel frame 4.6x faster than its default speed 6 for 3% more bytes; WebP at
# method 2, a 640x480 frame 3-4x faster than its default method 4 for 3% more bytes.
SAVE_OPTIONS = {
    "jpeg": {"quality": 85},
    "webp": {"quality": 80, "method": 2},
    "avif": {"quality": 60, "speed": 8},
    "png": {"compress_level": 6},
    "gif": {},
}

# Modes each output format can hold as they are; anything else is converted.
OUTPUT_MODES = {
    "jpeg": ("L", "RGB"),
    "webp": ("RGB", "RGBA"),
    "avif": ("RGB", "RGBA"),
    "png": ("L", "LA", "RGB", "RGBA"),
    "gif": ("RGB", "RGBA"),
}

EXIF_ORIENTATION = 0x0112
# Orientations that swap width and height (rotations by 90°, transposes).
SWAPS_AXES = (5, 6, 7, 8)
RESAMPLE = Image.Resampling.LANCZOS


@dataclass(frozen=True)
class Rendered:
    """A variant's bytes and what they are."""

    data: bytes
    content_type: str
    width: int
    height: int


def render(source, spec, max_pixels):
    """Render `spec` (a RenderSpec) from the file object `source`; 422 when the original cannot be."""
    try:
        with Image.open(source, formats=[PILLOW_FORMATS[spec.source_format]]) as im:
            if im.width * im.height > max_pixels:
                raise ImageTooLargeDimensions(
                    f"The original has {im.width * im.height} pixels; variants are rendered up to {max_pixels}."
                )
            if _keeps_animation(im, spec, max_pixels):
                frames, durations = _render_frames(im, spec, max_pixels)
                return _encode(frames[0], spec, icc=None, append=frames[1:], duration=durations, loop=im.info.get("loop"))
            frame, icc = _render_still(im, spec)
            return _encode(frame, spec, icc)
    except (ImageTooLargeDimensions, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeDimensions(f"The original has more pixels than variants are rendered from ({max_pixels}).") from exc
    except Exception as exc:
        # Originals were validated on upload; bytes Pillow cannot render now are the file's fault, not a 500.
        raise InvalidImage("The original could not be rendered in this size or format.") from exc


def _keeps_animation(im, spec, max_pixels):
    frames = getattr(im, "n_frames", 1)
    return (
        frames > 1
        and spec.fm in ANIMATED_FORMATS
        and spec.fm in ("webp", spec.source_format)
        and frames * im.width * im.height <= ANIMATION_DECODE_FACTOR * max_pixels
    )


def _render_still(im, spec):
    orientation = im.getexif().get(EXIF_ORIENTATION, 1)
    # Shrink in the stored orientation, then turn the small result: turning the
    # full-size decode first would hold a second full-size copy.
    stored = replace(spec, w=spec.h, h=spec.w) if orientation in SWAPS_AXES else spec
    # Fixed from the full size: recomputed after the scaled decode or the whole-factor
    # shrink, rounding would drift a pixel (300×200 at w=48 gave 48×33).
    target = _target_size(im.size, stored)
    if im.format == "JPEG":
        im.draft(None, _decoded_size(im.size, stored))
    im.seek(0)
    im.load()
    frame, icc = _output_mode(im, spec.fm, im.info.get("icc_profile"))
    frame = _reduce(frame, target)
    if frame is not im:
        im.close()  # frees the full-size decode before the resize and the encode
    frame = _resize(frame, target, spec.fit)
    if orientation != 1:
        frame = ImageOps.exif_transpose(frame)
    return frame, icc


def _render_frames(im, spec, max_pixels):
    width, height = _target_size(im.size, spec)
    if getattr(im, "n_frames", 1) * width * height > max_pixels:
        raise ImageTooLargeDimensions(
            f"{im.n_frames} frames of {width}×{height} exceed the {max_pixels} pixels a variant may hold; ask a smaller size."
        )
    frames, durations = [], []
    for frame in ImageSequence.Iterator(im):
        # Converted first: Pillow reads a WebP frame's duration only when it decodes the frame.
        rgba = frame.convert("RGBA")
        durations.append(frame.info.get("duration", 100))
        frames.append(_resize(_reduce(rgba, (width, height)), (width, height), spec.fit))
    return frames, durations


def _oriented(size, orientation):
    return (size[1], size[0]) if orientation in SWAPS_AXES else size


def _target_size(size, spec):
    """The output's size for a source of `size` (already oriented)."""
    width, height = size
    if spec.fit == "cover":
        return spec.w, spec.h
    scale = min((spec.w or width) / width, (spec.h or height) / height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _decoded_size(size, spec):
    """The smallest size the source must be decoded at: the output, or for `cover` the scaled frame before the crop."""
    if spec.fit != "cover":
        return _target_size(size, spec)
    scale = min(max(spec.w / size[0], spec.h / size[1]), 1)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _reduce(frame, target):
    """Shrink by the largest whole factor that stays at or above the output (a box filter, fast and
    light), so the resize after it works on at most twice the output's size."""
    width, height = frame.size
    factor = int(min(width / target[0], height / target[1]))
    return frame.reduce(factor) if factor >= 2 else frame


def _resize(frame, target, fit):
    box = None
    if fit == "cover":
        # The centred crop of the source with the output's aspect ratio.
        width, height = frame.size
        scale = min(width / target[0], height / target[1])
        crop_w, crop_h = target[0] * scale, target[1] * scale
        box = ((width - crop_w) / 2, (height - crop_h) / 2, (width + crop_w) / 2, (height + crop_h) / 2)
    elif target == frame.size:
        return frame
    return frame.resize(target, RESAMPLE, box=box)


def _output_mode(frame, fm, icc):
    """Convert to a mode the output format holds; returns (frame, the colour profile still valid for it)."""
    if frame.mode == "CMYK":
        return _cmyk_to_rgb(frame, icc), None
    if frame.mode.startswith("I"):
        # 16-bit greyscale: keep the top 8 bits (convert() would clip every value above 255 to white).
        frame = frame.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if frame.mode == "P" or frame.mode == "1":
        frame = frame.convert("RGBA" if "transparency" in frame.info else "RGB")
    if frame.mode in ("PA", "La", "RGBa"):
        frame = frame.convert("RGBA")
    allowed = OUTPUT_MODES[fm]
    if frame.mode in allowed:
        return frame, icc
    if frame.mode.endswith("A") and "RGB" in allowed and "RGBA" not in allowed:
        return _flatten(frame.convert("RGBA")), _same_family(frame.mode, "RGB", icc)
    target = "RGBA" if frame.mode.endswith("A") and "RGBA" in allowed else "RGB"
    return frame.convert(target), _same_family(frame.mode, target, icc)


def _same_family(before, after, icc):
    # A greyscale profile describes no RGB image: drop it when the colour space changes.
    return icc if before.startswith("L") == after.startswith("L") else None


def _flatten(frame):
    """Composite on white: formats without alpha would otherwise show transparent pixels' hidden colour."""
    background = Image.new("RGB", frame.size, "white")
    background.paste(frame, mask=frame.getchannel("A"))
    return background


def _cmyk_to_rgb(frame, icc):
    if not icc:
        return frame.convert("RGB")
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return ImageCms.profileToProfile(frame, source, ImageCms.createProfile("sRGB"), outputMode="RGB")


def _encode(frame, spec, icc, **animation):
    out = io.BytesIO()
    options = dict(SAVE_OPTIONS[spec.fm])
    if icc:
        options["icc_profile"] = icc
    if animation:
        options.update(save_all=True, append_images=animation["append"], duration=animation["duration"])
        if animation["loop"] is not None:
            options["loop"] = animation["loop"]
    # Metadata other than the colour profile stays behind (resize copies `info`).
    frame.info = {}
    frame.save(out, PILLOW_FORMATS[spec.fm], **options)
    return Rendered(out.getvalue(), spec.content_type, frame.width, frame.height)
