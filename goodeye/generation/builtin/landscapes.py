"""The landscape compositions: mountains, ocean, forest, city, desert, hills."""

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from goodeye.generation.builtin.paint import (
    GROUNDS,
    SNOW,
    SUNS,
    fbm,
    gradient_column,
    gradient_image,
    in_light,
    mix,
    paint_terrain,
    paste_shapes,
    scaled,
    value_noise,
)
from goodeye.generation.builtin.scene import Layer, paint_layers


def _pine(x, base, h, rng, unit):
    """One spruce outline: a zigzag cone."""
    tiers = rng.randint(3, 5)
    half = h * rng.uniform(0.2, 0.27)
    left, right = [], []
    for i in range(tiers + 1):
        t = i / tiers
        y = base - h + h * t
        w = half * t
        left.append((x - w, y))
        right.append((x + w, y))
        if 0 < i < tiers:
            left.append((x - w * 0.55, y + unit))
            right.append((x + w * 0.55, y + unit))
    return ("polygon", [(x, base - h - 4 * unit)] + right + list(reversed(left)), 255)


def _tree_line(s, ridge, height, autumn=False, density=1.0):
    """Trees standing on a ridge, as shapes for the ridge's layer."""
    rng, w = s.rng, s.width
    trees, x = [], rng.uniform(-20, 10)
    while x < w + 20:
        base_y = float(ridge[int(min(w - 1, max(0, x)))]) + height * 0.08
        size = height * rng.uniform(0.6, 1.3)
        if autumn:
            r = size * 0.32
            trees.append(("rect", (x - size * 0.03, base_y - size * 0.5, x + size * 0.03, base_y), 255))
            trees.append(("ellipse", (x - r, base_y - size * 0.5 - r * 1.3, x + r, base_y - size * 0.5 + r * 0.7), 255))
        else:
            trees.append(_pine(x, base_y, size, rng, s.unit))
        x += size * rng.uniform(0.22, 0.5) / density * (1.8 if rng.random() < 0.12 else 1.0)
    return trees


def _mountains(s):
    rng, nrng, w, h = s.rng, s.nrng, s.width, s.height
    lake = "lake" in s.plan.features or rng.random() < 0.2
    horizon = h * (rng.uniform(0.5, 0.6) if lake else rng.uniform(0.58, 0.7))
    s.sky_and_lights(horizon)
    count = rng.randint(3, 5)
    colours = s.layer_colours(s.ground("mountains"), count + 1, haze=0.7)
    snow = "snow" in s.plan.features or rng.random() < 0.45
    snow_colour = SNOW[s.plan.time]
    floor = horizon if lake else None
    layers, caps = [], {}
    for i in range(count):
        depth = i / max(1, count - 1)
        peak = horizon - h * (0.46 - 0.26 * depth) * rng.uniform(0.8, 1.1)
        base = horizon - h * (0.05 - 0.12 * depth)
        ridge = base - (base - peak) * fbm(nrng, w, rng.randint(2, 4), 7, gain=0.52) ** 1.35
        if lake:
            ridge = np.minimum(ridge, horizon - 1)
        if snow and i < 2:
            caps[i] = _snow_cap(ridge, peak, base, nrng, s.unit)
        layers.append(Layer(ridge, colours[i], scaled(colours[i], 0.8), floor=floor))
    if not lake:
        ridge = h - h * rng.uniform(0.08, 0.2) * fbm(nrng, w, 2, 5, smooth=True) - h * 0.05
        near = scaled(colours[-1], 0.72)
        trees = _tree_line(s, ridge, s.u(rng.uniform(70, 130))) if rng.random() < 0.5 else []
        layers.append(Layer(ridge, near, scaled(near, 0.7), trees))

    def between(i, layer):
        if caps.get(i):
            paste_shapes(s.img, mix(snow_colour, layer.top, 0.1 + 0.2 * i), [caps[i]])
        if "fog" in s.plan.features or rng.random() < 0.35:
            s.fog(float(np.mean(layer.ridge)) + h * 0.06, h * 0.05, 0.5)

    paint_layers(s, layers, between)
    if lake:
        _lake(s, horizon)
    s.vignette()


def _snow_cap(ridge, peak, base, nrng, unit):
    """The snow above the snowline of a ridge, as a polygon to paint over it."""
    line = peak + (base - peak) * 0.4
    # Thicker the higher the peak rises above the snowline, thinning to nothing at it.
    depth = np.clip(line - ridge, 0, None) * (0.3 + 0.5 * fbm(nrng, len(ridge), 12, 3))
    lower = ridge + np.minimum(depth, 60 * unit)
    covered = ridge < line
    if not covered.any():
        return None
    xs = np.nonzero(covered)[0]
    x0, x1 = int(xs[0]), int(xs[-1])
    upper = [(float(x), float(ridge[x])) for x in range(x0, x1 + 1, 2)]
    lower_pts = [(float(x), float(max(lower[x], ridge[x]))) for x in range(x1, x0 - 1, -2)]
    return ("polygon", upper + lower_pts, 255)


def _lake(s, horizon):
    """Mirror what stands above the waterline into a still lake."""
    w, h = s.width, s.height
    y = int(horizon)
    above = s.img.crop((0, max(0, 2 * y - h), w, y)).transpose(Image.FLIP_TOP_BOTTOM)
    water = gradient_image(w, h - y, [(0.0, mix(s.horizon_colour, (20, 40, 70), 0.35)), (1.0, in_light((14, 40, 70), s.plan.time))])
    reflection = Image.blend(above.resize((w, h - y)), water, 0.45).filter(ImageFilter.BoxBlur(1))
    s.img.paste(reflection, (0, y))
    ripples = []
    for _ in range(int(60 * s.unit * h / 1024) + 30):
        t = s.rng.random() ** 1.5
        yy = y + 2 + t * (h - y - 4)
        x = s.rng.uniform(0, w)
        ripples.append(("line", [(x, yy), (x + s.u(20 + 140 * t), yy)], s.u(1 + 1.5 * t), 255))
    paste_shapes(s.img, mix(s.horizon_colour, (255, 255, 255), 0.3), ripples, opacity=0.35, aa=1)
    s.img.paste(scaled(s.horizon_colour, 0.9), (0, y, w, y + max(1, int(s.u(2)))))


def _ocean(s):
    rng, nrng, w, h = s.rng, s.nrng, s.width, s.height
    features = s.plan.features
    horizon = h * rng.uniform(0.5, 0.62)
    s.paint_sky(horizon)
    if s.plan.time == "night" or "stars" in features:
        s.stars(horizon)
    cx, cy, r = s.place_sun(horizon)
    cy = min(cy, horizon - r * 0.3)
    if "rain" not in features:
        s.sun(cx, cy, r)
    clouds = rng.randint(2, 5) if "clouds" in features or "rain" in features else rng.choice((0, 1, 2, 3))
    if clouds:
        s.clouds(horizon, clouds)
    if rng.random() < 0.6:
        far = s.layer_colours(GROUNDS["mountains"], 3, haze=0.7)[0]
        bump = np.clip(np.sin(np.linspace(0, math.pi, w) * rng.uniform(0.8, 2.2) + rng.uniform(0, 6.28)), 0, 1)
        ridge = horizon - h * rng.uniform(0.03, 0.1) * bump * (0.5 + 0.5 * value_noise(nrng, w, 1, True)) * fbm(nrng, w, 6, 4) - 0.5
        paint_terrain(s.img, ridge, far, far, floor=horizon + 1)
    water_base = in_light(s.ground("ocean"), s.plan.time)
    y = int(horizon)
    water = gradient_image(w, h - y, [(0.0, mix(s.horizon_colour, water_base, 0.45)), (0.35, water_base), (1.0, scaled(water_base, 0.6))])
    s.img.paste(water, (0, y))
    if "rain" not in features:
        disc, halo = SUNS[s.plan.time]
        streaks, rows = [], int((h - y) / max(1.0, s.u(3)))
        for row in range(rows):
            t = row / max(1, rows)
            if rng.random() > 0.75 - 0.3 * t:
                continue
            yy = y + 1 + t * (h - y)
            half = r * (0.6 + 2.6 * t) * rng.uniform(0.25, 1.0)
            x = cx + rng.uniform(-0.5, 0.5) * r * t
            streaks.append(("line", [(x - half, yy), (x + half, yy)], s.u(1.0 + 2.5 * t), int(255 * (1.0 - 0.6 * t))))
        paste_shapes(s.img, mix(disc, halo, 0.4), streaks, opacity=0.8)
    waves = []
    for _ in range(int(260 * w / 1024)):
        t = rng.random() ** 1.7
        yy = y + 3 + t * (h - y - 3)
        x = rng.uniform(-40, w)
        length = s.u(10 + 170 * t) * rng.uniform(0.4, 1.0)
        waves.append(("line", [(x, yy), (x + length, yy)], s.u(1.0 + 2.8 * t), int(rng.uniform(70, 200))))
    paste_shapes(s.img, mix(s.horizon_colour, (255, 255, 255), 0.25), waves, opacity=0.55)
    if "palms" in features or rng.random() < 0.3:
        _beach(s)
    if "rain" in features:
        s.rain()
    s.vignette()


def _beach(s):
    rng, w, h = s.rng, s.width, s.height
    sand = in_light((226, 196, 146), s.plan.time)
    ridge = h - h * (0.08 + 0.07 * fbm(s.nrng, w, 2, 3, smooth=True))
    paint_terrain(s.img, ridge, sand, scaled(sand, 0.78))
    dark = scaled(in_light((30, 44, 38), s.plan.time), 0.8)
    side = rng.choice((-1, 1))
    shapes = []
    for k in range(rng.randint(1, 3)):
        x = w * (0.12 + 0.1 * k) if side < 0 else w * (0.88 - 0.1 * k)
        base = float(ridge[int(min(w - 1, max(0, x)))]) + s.u(4)
        shapes += _palm(x, base, s.u(rng.uniform(300, 460)), -side, rng, s.unit)
    paste_shapes(s.img, dark, shapes)


def _palm(x, base, height, lean, rng, unit):
    top_x, top_y = x + lean * height * rng.uniform(0.12, 0.3), base - height
    trunk = [(x + (top_x - x) * (i / 12) ** 1.6, base + (top_y - base) * i / 12) for i in range(13)]
    shapes = [("line", trunk, 14 * unit, 255)]
    for k in range(rng.randint(6, 9)):
        angle = -math.pi / 2 + (k / 8 - 0.5) * math.pi * 1.9 + rng.uniform(-0.15, 0.15)
        length = height * rng.uniform(0.32, 0.48)
        upper, lower = [], []
        for i in range(11):
            t = i / 10
            px = top_x + math.cos(angle) * length * t
            py = top_y + math.sin(angle) * length * t + t * t * length * 0.55
            thick = 12 * unit * math.sin(math.pi * min(1.0, t * 1.1 + 0.05))
            upper.append((px, py - thick))
            lower.append((px, py + thick))
        shapes.append(("polygon", upper + list(reversed(lower)), 255))
    return shapes


def _forest(s):
    rng, nrng, w, h = s.rng, s.nrng, s.width, s.height
    horizon = h * rng.uniform(0.5, 0.62)
    s.sky_and_lights(horizon)
    far = s.layer_colours(GROUNDS["mountains"], 4, haze=0.75)
    layers = [Layer(horizon - h * rng.uniform(0.12, 0.25) * fbm(nrng, w, 3, 6) ** 1.2, far[0], far[1])]
    count = rng.randint(3, 4)
    colours = s.layer_colours(s.ground("forest"), count, haze=0.7)
    autumn = "autumn" in s.plan.features
    for i in range(count):
        depth = i / max(1, count - 1)
        base = horizon + h * (0.02 + 0.3 * depth) * rng.uniform(0.8, 1.0)
        ridge = base - h * 0.08 * fbm(nrng, w, 2, 4, smooth=True)
        trees = _tree_line(s, ridge, s.u(60 + 200 * depth) * rng.uniform(0.8, 1.1), autumn)
        layers.append(Layer(ridge, colours[i], scaled(colours[i], 0.75), trees))
    if "snow" in s.plan.features:
        snow = in_light((232, 238, 246), s.plan.time)
        layers.append(Layer(h - h * 0.06 * fbm(nrng, w, 2, 3, smooth=True), snow, scaled(snow, 0.85)))
    foggy = "fog" in s.plan.features

    def between(i, layer):
        if i > 0 and (foggy or rng.random() < 0.5):
            s.fog(float(np.mean(layer.ridge)) + h * 0.03, h * 0.05, 0.5 if foggy else 0.35)

    paint_layers(s, layers, between)
    if "rain" in s.plan.features:
        s.rain()
    s.vignette()


def _city(s):
    rng, w, h = s.rng, s.width, s.height
    horizon = h * rng.uniform(0.55, 0.72)
    s.sky_and_lights(horizon, clouds=rng.choice((0, 1, 2)))
    neon = "neon" in s.plan.features
    if neon:
        s.glow(w / 2, horizon + h * 0.15, w * 0.75, (255, 60, 170), 0.45)
    count = 3
    colours = s.layer_colours(s.ground("city"), count, haze=0.7)
    lit = {"night": 0.42, "sunset": 0.22, "dawn": 0.12, "day": 0.0}[s.plan.time]
    window_colours = [(255, 214, 140), (255, 232, 180), (250, 200, 120)]
    if neon:
        window_colours = [(255, 80, 200), (80, 230, 255), (255, 220, 120), (170, 110, 255)]
    for i in range(count):
        depth = i / (count - 1)
        buildings, x = [], rng.uniform(-40, 0)
        low, high = 0.12 + 0.12 * depth, 0.32 + 0.3 * depth
        while x < w:
            bw = s.u(rng.uniform(36, 110) * (0.7 + 0.6 * depth))
            top = horizon - h * 0.02 - h * rng.uniform(low, high) * (1.5 if rng.random() < 0.12 else 1.0) + h * 0.22 * depth
            buildings.append((x, max(h * 0.06, top), x + bw))
            x += bw + s.u(rng.uniform(0, 12))
        shapes = []
        for x0, top, x1 in buildings:
            shapes.append(("rect", (x0, top, x1, h + 2), 255))
            roll, bw = rng.random(), x1 - x0
            if roll < 0.18:
                shapes.append(("rect", (x0 + bw * 0.2, top - s.u(24), x1 - bw * 0.2, top), 255))
            elif roll < 0.3:
                spire = top - s.u(rng.uniform(30, 90))
                shapes.append(("polygon", [(x0 + bw * 0.15, top), ((x0 + x1) / 2, spire), (x1 - bw * 0.15, top)], 255))
            elif roll < 0.42:
                mid = x0 + bw * rng.uniform(0.3, 0.7)
                shapes.append(("rect", (mid - s.u(1.5), top - s.u(rng.uniform(30, 70)), mid + s.u(1.5), top), 255))
        column = gradient_column(h, [(0.0, colours[i]), (1.0, scaled(colours[i], 0.7))], horizon - h * 0.4, h)
        # Upright edges need no antialiasing; drawing the mask at 1x halves the work.
        paste_shapes(s.img, column, shapes, aa=1)
        if i > 0:
            _windows(s, buildings, h + 2, lit * (0.6 + 0.4 * depth), window_colours, colours[i], depth)
        if i < count - 1 and ("fog" in s.plan.features or neon or rng.random() < 0.3):
            s.fog(h * 0.9, h * 0.2, 0.35)
    if "rain" in s.plan.features:
        s.rain()
    s.vignette(0.4)


def _windows(s, buildings, ground, lit, colours, wall, depth):
    rng = s.rng
    draw = ImageDraw.Draw(s.img)
    cell_w, cell_h = s.u(10 + 6 * depth), s.u(14 + 8 * depth)
    pane = mix(wall, (255, 255, 255), 0.1) if lit == 0 else scaled(wall, 0.85)
    for x0, top, x1 in buildings:
        cols = int((x1 - x0 - cell_w * 0.6) // cell_w)
        if cols < 1:
            continue
        margin = (x1 - x0 - cols * cell_w) / 2
        dark_panes = rng.random() < 0.5
        for row in range(int((min(ground, s.height) - top - cell_h) // cell_h)):
            y = top + cell_h * 0.7 + row * cell_h
            for col in range(cols):
                on = rng.random() < lit
                if not on and lit > 0 and not dark_panes:
                    continue
                x = x0 + margin + col * cell_w
                draw.rectangle((x + cell_w * 0.22, y, x + cell_w * 0.78, y + cell_h * 0.55), fill=rng.choice(colours) if on else pane)


def _desert(s):
    rng, nrng, w, h = s.rng, s.nrng, s.width, s.height
    horizon = h * rng.uniform(0.52, 0.64)
    s.sky_and_lights(horizon, clouds=rng.choice((0, 0, 1, 2)))
    count = rng.randint(3, 4)
    colours = s.layer_colours(s.ground("desert"), count + 1, haze=0.6)
    layers = []
    if rng.random() < 0.6:
        mesa = horizon - h * rng.uniform(0.06, 0.16) * np.clip(fbm(nrng, w, 3, 4) * 2.2 - 0.6, 0, 1) - 1
        layers.append(Layer(mesa, colours[0], colours[1]))
    for i in range(count):
        depth = i / max(1, count - 1)
        base = horizon + h * (0.04 + 0.3 * depth)
        ridge = base - h * (0.05 + 0.08 * depth) * fbm(nrng, w, rng.randint(1, 3), 3, gain=0.35, smooth=True)
        colour = colours[i + 1]
        layers.append(Layer(ridge, mix(colour, (255, 236, 200), 0.15), scaled(colour, 0.72)))
    paint_layers(s, layers)
    if "cactus" in s.plan.features or rng.random() < 0.5:
        x = w * rng.choice((rng.uniform(0.08, 0.3), rng.uniform(0.7, 0.92)))
        paste_shapes(s.img, scaled(in_light((46, 84, 52), s.plan.time), 0.7), _cactus(x, h * 1.01, s.u(rng.uniform(220, 360)), rng, s.unit))
    s.vignette()


def _cactus(x, base, height, rng, unit):
    r = 16 * unit
    shapes = [
        ("rect", (x - r, base - height + r, x + r, base), 255),
        ("ellipse", (x - r, base - height, x + r, base - height + 2 * r), 255),
    ]
    for side in (-1, 1):
        if rng.random() < 0.8:
            arm_y = base - height * rng.uniform(0.35, 0.6)
            arm_top = arm_y - height * rng.uniform(0.15, 0.3)
            ar, ax = r * 0.75, x + side * r * rng.uniform(2.2, 3.2)
            shapes.append(("rect", (min(x, ax), arm_y - ar, max(x, ax), arm_y + ar), 255))
            shapes.append(("rect", (ax - ar, arm_top + ar, ax + ar, arm_y + ar), 255))
            shapes.append(("ellipse", (ax - ar, arm_top, ax + ar, arm_top + 2 * ar), 255))
            shapes.append(("ellipse", (ax - ar, arm_y - ar, ax + ar, arm_y + ar), 255))
    return shapes


def _hills(s):
    rng, nrng, w, h = s.rng, s.nrng, s.width, s.height
    horizon = h * rng.uniform(0.45, 0.6)
    s.sky_and_lights(horizon, clouds=rng.randint(1, 4))
    count = rng.randint(3, 5)
    colours = s.layer_colours(s.ground("hills"), count, haze=0.6)
    layers = []
    for i in range(count):
        depth = i / max(1, count - 1)
        base = horizon + h * (0.02 + 0.34 * depth)
        ridge = base - h * (0.06 + 0.08 * depth) * fbm(nrng, w, rng.randint(1, 2), 3, gain=0.3, smooth=True)
        trees = []
        if rng.random() < 0.6:
            for _ in range(rng.randint(1, 3)):
                x = rng.uniform(0.05, 0.95) * w
                size = s.u(40 + 90 * depth)
                y = float(ridge[int(x)]) + size * 0.05
                trees.append(("rect", (x - size * 0.05, y - size * 0.6, x + size * 0.05, y), 255))
                trees.append(("ellipse", (x - size * 0.38, y - size * 1.25, x + size * 0.38, y - size * 0.45), 255))
        # Alternate a warmer green so neighbouring hills read apart.
        colour = mix(colours[i], (255, 240, 160), 0.12 * (i % 2))
        layers.append(Layer(ridge, mix(colour, (255, 250, 220), 0.08), scaled(colour, 0.8), trees))
    paint_layers(s, layers)
    if "flowers" in s.plan.features or rng.random() < 0.5:
        _flowers(s)
    if "rain" in s.plan.features:
        s.rain()
    s.vignette(0.28)


def _flowers(s):
    rng, w, h = s.rng, s.width, s.height
    palette = [(250, 120, 160), (255, 220, 90), (255, 250, 245), (200, 120, 230)] + list(s.plan.subject_colours[1:])
    by_colour = {}
    for _ in range(int(320 * w / 1024)):
        t = rng.random() ** 0.7
        y, x, r = h * (0.82 + 0.18 * t), rng.uniform(0, w), s.u(2 + 6 * t)
        by_colour.setdefault(rng.choice(palette), []).append(("ellipse", (x - r, y - r, x + r, y + r), 255))
    for colour, shapes in by_colour.items():
        paste_shapes(s.img, in_light(colour, s.plan.time), shapes)


COMPOSITIONS = {"mountains": _mountains, "ocean": _ocean, "forest": _forest, "city": _city, "desert": _desert, "hills": _hills}
