"""Colour maths, palettes and the drawing primitives every composition paints with (Pillow and numpy)."""

import colorsys
import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def mix(a, b, t):
    return tuple(int(round(a[i] + (b[i] - a[i]) * t)) for i in range(3))


def scaled(colour, factor):
    return tuple(max(0, min(255, int(round(c * factor)))) for c in colour)


def distance(a, b):
    return math.sqrt(sum((a[i] - b[i]) ** 2 for i in range(3)))


def hsv(h, s, v):
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


SKIES = {
    "day": [(0.0, (44, 98, 178)), (0.55, (112, 168, 224)), (1.0, (210, 230, 242))],
    "sunset": [(0.0, (36, 30, 84)), (0.4, (128, 52, 120)), (0.72, (232, 106, 80)), (1.0, (255, 192, 112))],
    "dawn": [(0.0, (84, 112, 176)), (0.5, (212, 154, 178)), (1.0, (255, 214, 170))],
    "night": [(0.0, (4, 6, 20)), (0.55, (16, 26, 64)), (1.0, (54, 50, 108))],
}

SUNS = {  # disc, glow
    "day": ((255, 252, 236), (255, 246, 214)),
    "sunset": ((255, 226, 160), (255, 150, 84)),
    "dawn": ((255, 238, 206), (255, 196, 156)),
    "night": ((238, 238, 224), (150, 160, 214)),
}

SNOW = {  # snow stays the brightest thing on a mountain, even by moonlight
    "day": (246, 248, 252),
    "sunset": (255, 204, 196),
    "dawn": (255, 228, 222),
    "night": (150, 162, 200),
}

GROUNDS = {  # the day colour of the nearest layer of each landscape
    "mountains": (58, 74, 100),
    "forest": (30, 72, 48),
    "hills": (82, 142, 66),
    "desert": (208, 140, 80),
    "city": (54, 62, 86),
    "ocean": (26, 90, 130),
}


def in_light(colour, time):
    """A day colour as it looks at the plan's time of day."""
    if time == "sunset":
        return mix(scaled(colour, 0.55), (72, 30, 72), 0.35)
    if time == "dawn":
        return mix(scaled(colour, 0.82), (124, 92, 132), 0.25)
    if time == "night":
        return mix(scaled(colour, 0.28), (10, 14, 36), 0.5)
    return colour


# -- drawing primitives ----------------------------------------------------------
# A shape is a tuple (kind, geometry..., value): value is the mask level it
# draws (255 covers, 0 erases), so one mask can hold a crescent moon or a tree
# line on top of a hill.


def shape_points(shape):
    kind = shape[0]
    if kind in ("polygon", "line"):
        pad = shape[2] if kind == "line" else 0
        xs = [p[0] for p in shape[1]]
        ys = [p[1] for p in shape[1]]
        return min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad
    return shape[1]


def draw_shape(draw, shape, ox, oy, s):
    kind, geometry, value = shape[0], shape[1], shape[-1]

    def box(b):
        return ((b[0] - ox) * s, (b[1] - oy) * s, (b[2] - ox) * s, (b[3] - oy) * s)

    if kind == "polygon":
        draw.polygon([((x - ox) * s, (y - oy) * s) for x, y in geometry], fill=value)
    elif kind == "line":
        draw.line([((x - ox) * s, (y - oy) * s) for x, y in geometry], fill=value, width=max(1, int(shape[2] * s)), joint="curve")
    elif kind == "ellipse":
        draw.ellipse(box(geometry), fill=value)
    elif kind == "rect":
        draw.rectangle(box(geometry), fill=value)
    elif kind == "ring":
        draw.ellipse(box(geometry), outline=value, width=max(1, int(shape[2] * s)))
    elif kind == "pie":
        draw.pieslice(box(geometry), shape[2], shape[3], fill=value)


def paste_shapes(img, fill, shapes, opacity=1.0, aa=2):
    """Paint shapes, antialiased by drawing their mask `aa` times larger; fill is a colour or a `gradient_column`."""
    if not shapes:
        return
    width, height = img.size
    boxes = [shape_points(s) for s in shapes]
    x0 = max(0, int(math.floor(min(b[0] for b in boxes))) - 1)
    y0 = max(0, int(math.floor(min(b[1] for b in boxes))) - 1)
    x1 = min(width, int(math.ceil(max(b[2] for b in boxes))) + 2)
    y1 = min(height, int(math.ceil(max(b[3] for b in boxes))) + 2)
    if x1 <= x0 or y1 <= y0:
        return
    mask = Image.new("L", ((x1 - x0) * aa, (y1 - y0) * aa), 0)
    draw = ImageDraw.Draw(mask)
    for shape in shapes:
        draw_shape(draw, shape, x0, y0, aa)
    if aa > 1:
        mask = mask.reduce(aa)
    if opacity < 1.0:
        mask = mask.point(opacity_lut(opacity))
    if isinstance(fill, Image.Image):
        img.paste(widen(fill, x0, y0, x1, y1), (x0, y0), mask)
    else:
        img.paste(fill, (x0, y0, x1, y1), mask)


def opacity_lut(opacity):
    return [int(v * opacity + 0.5) for v in range(256)]


def gradient_column(height, stops, y0=0, y1=None):
    """A vertical gradient one pixel wide; stops are (fraction of [y0, y1], colour)."""
    y1 = height if y1 is None else y1
    rows = np.arange(height, dtype=np.float32) + 0.5
    t = np.clip((rows - y0) / max(1.0, y1 - y0), 0.0, 1.0)
    positions = [s[0] for s in stops]
    column = np.stack([np.interp(t, positions, [s[1][c] for s in stops]) for c in range(3)], axis=1)
    return Image.fromarray(np.round(column).astype(np.uint8)[:, None, :], "RGB")


def widen(column, x0, y0, x1, y1):
    """The part of a gradient column that fills a box; widening a column costs far less than numpy."""
    return column.crop((0, y0, 1, y1)).resize((x1 - x0, y1 - y0), Image.NEAREST)


def gradient_image(width, height, stops, y0=0, y1=None):
    """A vertical gradient image; stops are (fraction of [y0, y1], colour)."""
    return widen(gradient_column(height, stops, y0, y1), 0, 0, width, height)


def clip_box(img, box):
    width, height = img.size
    x0, y0 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
    x1, y1 = min(width, int(math.ceil(box[2]))), min(height, int(math.ceil(box[3])))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def paste_soft(img, colour, box, field_fn, scale=8):
    """Paint a smooth field (0..1 at image coordinates) inside box, computed at 1/scale resolution."""
    box = clip_box(img, box)
    if box is None:
        return
    x0, y0, x1, y1 = box
    w, h = max(2, (x1 - x0) // scale), max(2, (y1 - y0) // scale)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    values = field_fn(x0 + (xs + 0.5) * (x1 - x0) / w, y0 + (ys + 0.5) * (y1 - y0) / h)
    small = Image.fromarray(np.clip(values * 255.0, 0, 255).astype(np.uint8), "L")
    img.paste(colour, box, small.resize((x1 - x0, y1 - y0), Image.BILINEAR))


def paste_blurred(img, colour, shapes, radius, opacity, scale=4):
    """Paint shapes as a soft shadow or cloud: drawn and blurred at 1/scale resolution."""
    boxes = [shape_points(s) for s in shapes]
    pad = radius * 3
    box = clip_box(img, (min(b[0] for b in boxes) - pad, min(b[1] for b in boxes) - pad,
                          max(b[2] for b in boxes) + pad, max(b[3] for b in boxes) + pad))
    if box is None:
        return
    x0, y0, x1, y1 = box
    w, h = max(2, (x1 - x0) // scale), max(2, (y1 - y0) // scale)
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    sx = w / (x1 - x0)
    for shape in shapes:
        draw_shape(draw, shape, x0, y0, sx)
    mask = mask.filter(ImageFilter.GaussianBlur(max(0.5, radius * sx)))
    img.paste(colour, box, mask.resize((x1 - x0, y1 - y0), Image.BILINEAR).point(opacity_lut(opacity)))


@functools.lru_cache(maxsize=32)
def vignette_mask(width, height, strength):
    w, h = max(2, width // 16), max(2, height // 16)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.sqrt(((xs + 0.5) / w * 2 - 1) ** 2 + ((ys + 0.5) / h * 2 - 1) ** 2) / math.sqrt(2)
    values = strength * np.clip((d - 0.45) / 0.55, 0.0, 1.0) ** 1.6
    return Image.fromarray(np.clip(values * 255.0, 0, 255).astype(np.uint8), "L").resize((width, height), Image.BILINEAR)


def value_noise(nrng, width, cells, smooth):
    points = nrng.random(cells + 2)
    x = np.arange(width, dtype=np.float64) * cells / width
    i = x.astype(np.int64)
    t = x - i
    if smooth:
        t = t * t * (3.0 - 2.0 * t)
    return points[i] * (1.0 - t) + points[i + 1] * t


def fbm(nrng, width, cells, octaves, gain=0.5, smooth=False):
    """Fractal 1-D noise in [0, 1]: a ridge line."""
    total = np.zeros(width)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        total += amplitude * value_noise(nrng, width, cells * 2**octave, smooth)
        norm += amplitude
        amplitude *= gain
    return total / norm


def ridge_polygon(ridge, bottom, step=2):
    width = len(ridge)
    xs = list(range(0, width, step)) + [width - 1]
    points = [(float(x), float(ridge[x])) for x in xs]
    return ("polygon", points + [(float(width), float(ridge[-1])), (float(width), float(bottom)), (0.0, float(bottom))], 255)


def paint_terrain(img, ridge, top_colour, bottom_colour, extra=(), floor=None, stop=None):
    """A terrain layer: below `ridge` (one y per column) down to `floor`, plus extra shapes, in a vertical gradient.

    Nothing is painted below `stop`, where a nearer layer will cover everything anyway.
    """
    width, height = img.size
    floor = height if floor is None else floor
    end = int(math.ceil(min(floor, height if stop is None else stop)))
    ridge = np.minimum(ridge, end)
    solid = int(min(end, max(0, math.floor(ridge.max()) + 1)))
    shapes = [ridge_polygon(ridge, solid + 1)] + list(extra)
    top = max(0, int(min(shape_points(s)[1] for s in shapes)))
    column = gradient_column(height, [(0.0, top_colour), (1.0, bottom_colour)], top, floor)
    paste_shapes(img, column, shapes)
    if solid < end:
        img.paste(widen(column, 0, solid, width, end), (0, solid))
