"""The abstract compositions: a Bauhaus poster, paper waves, gradient orbs."""

import colorsys
import math

import numpy as np
from PIL import Image

from goodeye.generation.builtin.paint import (
    distance,
    fbm,
    gradient_image,
    hsv,
    mix,
    paste_blurred,
    paste_shapes,
    ridge_polygon,
    scaled,
)
from goodeye.generation.builtin.scene import Layer, paint_layers


BAUHAUS_CLASSIC = [(214, 48, 40), (242, 184, 40), (30, 72, 150), (28, 28, 32)]


def _named_colours(plan):
    return list(plan.subject_colours) + ([plan.sky_tint] if plan.sky_tint else [])


def _base_hue(plan):
    """The hue of the first colour the prompt names, else the prompt's hashed hue."""
    named = _named_colours(plan)
    if named:
        return colorsys.rgb_to_hsv(*(c / 255.0 for c in named[0]))[0]
    return plan.hue


def _abstract_palette(s, count, spread):
    """Colours the prompt names, completed by hues `spread` apart around the prompt's hue."""
    rng, plan = s.rng, s.plan
    hue = _base_hue(plan) + rng.uniform(-0.02, 0.02)
    pastel = any(word in plan.features for word in ("flowers", "snow"))
    saturation = (0.3, 0.5) if pastel else (0.5, 0.8)
    generated = [hsv(hue + offset, rng.uniform(*saturation), rng.uniform(0.72, 0.95)) for offset in spread]
    return (_named_colours(plan) + generated)[:count]


def _bauhaus(s):
    rng, w, h = s.rng, s.width, s.height
    named = _named_colours(s.plan)
    if named or rng.random() < 0.4:
        # Primary colours on paper; the ones the prompt names come first.
        palette = (named + [c for c in BAUHAUS_CLASSIC if all(distance(c, n) > 120 for n in named)])[:4]
    else:
        palette = _abstract_palette(s, 4, rng.choice(((0, 0.5, 0.08, 0.58), (0, 0.33, 0.67, 0.5), (0, 0.42, 0.58, 0.04))))
    dark = s.plan.time == "night" and s.plan.time_named
    paper = (26, 30, 44) if dark else mix((242, 234, 218), palette[0], 0.05)
    ink = (236, 230, 218) if dark else (30, 30, 34)
    s.img.paste(gradient_image(w, h, [(0.0, scaled(paper, 1.03)), (1.0, scaled(paper, 0.95))]))
    grid = min(w, h) / 8.0
    cols, rows = int(w // grid), int(h // grid)
    ox, oy = (w - cols * grid) / 2, (h - rows * grid) / 2

    def point(gx, gy):
        return ox + gx * grid, oy + gy * grid

    # A large block anchors the composition on one side.
    side = rng.choice(("left", "right", "top", "bottom"))
    split = rng.choice((0.38, 0.5, 0.62))
    block = {"left": (0, 0, w * split, h), "right": (w * split, 0, w, h), "top": (0, 0, w, h * split), "bottom": (0, h * split, w, h)}[side]
    paste_shapes(s.img, mix(palette[-1], paper, 0.65), [("rect", block, 255)], aa=1)
    # The main circle takes the first colour (the prompt's, if it names one); the rest are shuffled.
    rest = palette[1:]
    rng.shuffle(rest)
    colours = [palette[0]] + rest
    x, y = point(rng.randint(2, max(2, cols - 2)), rng.randint(2, max(2, rows - 2)))
    r = grid * rng.choice((1.5, 2.0, 2.5))
    paste_shapes(s.img, colours[0], [("ellipse", (x - r, y - r, x + r, y + r), 255)], aa=3)
    kinds = ["half", "rect", "ring", "triangle", "stripes", "dots", "quarter", "bar"]
    rng.shuffle(kinds)
    for k, kind in enumerate(kinds[: rng.randint(3, 5)]):
        colour = colours[(k + 1) % len(colours)]
        x, y = point(rng.randint(1, max(1, cols - 1)), rng.randint(1, max(1, rows - 1)))
        size = grid * rng.choice((0.5, 1.0, 1.0, 1.5))
        if kind == "half":
            start = rng.choice((0, 90, 180, 270))
            shapes = [("pie", (x - size, y - size, x + size, y + size), start, start + 180, 255)]
        elif kind == "quarter":
            start = rng.choice((0, 90, 180, 270))
            shapes = [("pie", (x - 2 * size, y - 2 * size, x + 2 * size, y + 2 * size), start, start + 90, 255)]
        elif kind == "rect":
            shapes = [("rect", (x - size, y - size, x + size, y + size), 255)]
        elif kind == "bar":
            shapes = [("rect", (x - grid * 2, y - grid * 0.12, x + grid * 2, y + grid * 0.12), 255)]
            colour = ink
        elif kind == "ring":
            shapes = [("ring", (x - size, y - size, x + size, y + size), grid * 0.16, 255)]
        elif kind == "triangle":
            shapes = [("polygon", [(x - size, y + size), (x + size, y + size), (x + rng.choice((-1, 0, 1)) * size, y - size)], 255)]
        elif kind == "stripes":
            shapes = [("rect", (x - size, y - size + j * size / 2, x + size, y - size + j * size / 2 + size / 4), 255) for j in range(4)]
        else:
            d = grid * 0.08
            shapes = [
                ("ellipse", (x + i * grid * 0.4 - d, y + j * grid * 0.4 - d, x + i * grid * 0.4 + d, y + j * grid * 0.4 + d), 255)
                for i in range(4)
                for j in range(4)
            ]
            colour = ink
        paste_shapes(s.img, colour, shapes, opacity=rng.choice((1.0, 1.0, 0.88)), aa=3)
    margin = grid * 0.5
    paste_shapes(s.img, ink, [("line", [(margin, h - margin), (w - margin, h - margin)], s.u(3), 255)], aa=1)


def _waves(s):
    rng, nrng, w, h = s.rng, s.nrng, s.width, s.height
    hue = _base_hue(s.plan)
    drift = rng.choice((-0.12, -0.07, 0.07, 0.12))
    count = rng.randint(6, 9)
    background = hsv(hue, 0.12, 0.97)
    s.img.paste(gradient_image(w, h, [(0.0, background), (1.0, hsv(hue, 0.25, 0.92))]))
    if rng.random() < 0.7:
        r = min(w, h) * rng.uniform(0.08, 0.14)
        x, y = w * rng.uniform(0.25, 0.75), h * rng.uniform(0.12, 0.28)
        paste_shapes(s.img, hsv(hue + 0.1, 0.3, 1.0), [("ellipse", (x - r, y - r, x + r, y + r), 255)], aa=3)
    phase, freq = rng.uniform(0, 6.28), rng.uniform(1.0, 2.4)
    xs = np.arange(w) / w * 2 * math.pi
    layers = []
    for i in range(count):
        t = (i + 1) / count
        colour = hsv(hue + drift * t, 0.25 + 0.5 * t, 0.95 - 0.55 * t)
        amplitude = h * rng.uniform(0.025, 0.06)
        ridge = h * (0.22 + 0.74 * t) + amplitude * np.sin(xs * freq + phase + i * rng.uniform(0.6, 1.2))
        ridge = ridge + h * 0.05 * (fbm(nrng, w, 2, 2, smooth=True) - 0.5)
        layers.append(Layer(ridge, scaled(colour, 1.05), scaled(colour, 0.92)))

    def shadow(i, layer):
        near = layers[i + 1].ridge
        paste_blurred(s.img, (0, 0, 0), [ridge_polygon(near - s.u(8), near.max() + s.u(40), step=8)], s.u(9), 0.25)

    # The shadow of each band falls on the one behind it.
    paint_layers(s, layers, shadow)
    s.vignette(0.15)


def _orbs(s):
    rng, w, h = s.rng, s.width, s.height
    palette = _abstract_palette(s, 5, rng.choice(((0, 0.06, -0.06, 0.12, -0.12), (0, 0.1, 0.2, -0.1, 0.5))))
    scale = 16
    sw, sh = max(4, w // scale), max(4, h // scale)
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    night = s.plan.time == "night" and s.plan.time_named
    base = np.array(scaled(palette[-1], 0.25) if night else mix(palette[-1], (255, 255, 255), 0.4), dtype=np.float32)
    total = np.full((sh, sw, 1), 0.35, dtype=np.float32)
    colour = total * base
    for c in palette[:4] + [rng.choice(palette)]:
        bx, by = rng.uniform(-0.1, 1.1) * sw, rng.uniform(-0.1, 1.1) * sh
        sigma = rng.uniform(0.18, 0.4) * max(sw, sh)
        weight = np.exp(-((xs - bx) ** 2 + (ys - by) ** 2) / (2 * sigma**2))[:, :, None] * rng.uniform(0.7, 1.3)
        total += weight
        colour += weight * np.array(c, dtype=np.float32)
    small = Image.fromarray(np.clip(colour / total, 0, 255).astype(np.uint8), "RGB")
    s.img.paste(small.resize((w, h), Image.BICUBIC))
    for _ in range(rng.randint(1, 3)):
        r = min(w, h) * rng.uniform(0.12, 0.34)
        x, y = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
        paste_shapes(s.img, (255, 255, 255), [("ellipse", (x - r, y - r, x + r, y + r), 255)], opacity=0.12, aa=2)
        paste_shapes(s.img, (255, 255, 255), [("ring", (x - r, y - r, x + r, y + r), s.u(2), 255)], opacity=0.5, aa=3)
    s.vignette(0.18)


COMPOSITIONS = {"bauhaus": _bauhaus, "waves": _waves, "orbs": _orbs}
