"""One render in progress: the canvas, its random sources, the sky and the shared finishing touches."""

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from goodeye.generation.builtin.paint import (
    GROUNDS,
    SKIES,
    SUNS,
    gradient_image,
    in_light,
    mix,
    paint_terrain,
    paste_blurred,
    paste_shapes,
    paste_soft,
    scaled,
    value_noise,
    vignette_mask,
)


class Scene:
    """One render in progress: canvas, random sources and the palette of the plan."""

    def __init__(self, plan, width, height, rng):
        self.plan, self.width, self.height, self.rng = plan, width, height, rng
        self.nrng = np.random.default_rng(rng.getrandbits(64))
        self.unit = min(width, height) / 1024.0
        sky = [(t, colour) for t, colour in SKIES[plan.time]]
        if "rain" in plan.features:
            sky = [(t, scaled(mix(c, (128, 132, 142), 0.6), 0.8)) for t, c in sky]
        if "snow" in plan.features:
            sky = [(t, mix(c, (236, 240, 246), 0.25)) for t, c in sky]
        if "neon" in plan.features:
            sky = [(t, mix(c, (200, 40, 160), 0.15 + 0.35 * t)) for t, c in sky]
        if plan.sky_tint:
            sky = [(t, mix(c, in_light(plan.sky_tint, plan.time), 0.45)) for t, c in sky]
        self.sky = sky
        self.horizon_colour = sky[-1][1]
        self.img = Image.new("RGB", (width, height))

    def u(self, value):
        """A length given for a 1024-pixel short side, at this canvas's size."""
        return value * self.unit

    def ground(self, scene):
        base = GROUNDS[scene]
        features = self.plan.features
        if "snow" in features and scene in ("hills", "desert"):
            base = (226, 232, 242)
        elif "autumn" in features and scene in ("forest", "hills"):
            base = (150, 70, 38) if scene == "forest" else (178, 122, 54)
        if self.plan.subject_colours:
            base = mix(base, self.plan.subject_colours[0], 0.7)
        return base

    def layer_colours(self, base, count, haze=0.78):
        """Far-to-near colours of `count` layers: the far ones fade into the horizon."""
        near = in_light(base, self.plan.time)
        colours = []
        for i in range(count):
            depth = 1.0 - i / max(1, count - 1)
            colours.append(mix(near, self.horizon_colour, depth * haze))
        return colours

    # -- sky ----------------------------------------------------------------

    def paint_sky(self, horizon):
        self.img.paste(gradient_image(self.width, self.height, self.sky, 0, horizon))

    def stars(self, horizon):
        count = int(self.width * self.height / 3600)
        xs = self.nrng.random(count) * self.width
        ys = (self.nrng.random(count) ** 1.6) * horizon
        brightness = 110 + self.nrng.random(count) * 145
        draw = ImageDraw.Draw(self.img)
        for x, y, b in zip(xs.tolist(), ys.tolist(), brightness.tolist()):
            b = int(b * (1.0 - 0.6 * y / max(1, horizon)))
            colour = (b, b, min(255, b + 12))
            if b > 225:
                r = self.u(1.6)
                draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
            else:
                draw.point((x, y), fill=colour)

    def glow(self, cx, cy, radius, colour, strength):
        def field(xs, ys):
            d = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) / radius
            return strength * np.clip(1.0 - d, 0.0, 1.0) ** 2.2

        paste_soft(self.img, colour, (cx - radius, cy - radius, cx + radius, cy + radius), field)

    def sun(self, cx, cy, r):
        time = self.plan.time
        disc, halo = SUNS[time]
        if self.plan.sky_tint and time != "night":
            halo = mix(halo, self.plan.sky_tint, 0.4)
        self.glow(cx, cy, r * (8 if time != "day" else 6), halo, 0.55 if time != "night" else 0.35)
        self.glow(cx, cy, r * 2.6, mix(disc, halo, 0.3), 0.7)
        shapes = [("ellipse", (cx - r, cy - r, cx + r, cy + r), 255)]
        if time == "night" and self.rng.random() < 0.6:
            off = r * self.rng.uniform(0.35, 0.7)
            shapes.append(("ellipse", (cx - r + off, cy - r - off * 0.4, cx + r + off, cy + r - off * 0.4), 0))
        paste_shapes(self.img, disc, shapes, aa=3)

    def place_sun(self, horizon):
        rng, time = self.rng, self.plan.time
        r = self.u(rng.uniform(34, 60)) if time != "night" else self.u(rng.uniform(26, 44))
        cx = self.width * rng.uniform(0.22, 0.78)
        if time in ("sunset", "dawn"):
            cy = horizon - r * rng.uniform(-0.2, 2.2) - self.height * 0.06
        else:
            cy = horizon * rng.uniform(0.18, 0.45)
        return cx, cy, r

    def clouds(self, horizon, count):
        rng = self.rng
        time = self.plan.time
        colour = {"day": (250, 250, 252), "sunset": (255, 176, 150), "dawn": (255, 222, 214), "night": (58, 62, 104)}[time]
        if "rain" in self.plan.features:
            colour = (96, 100, 112)
        shade = mix(colour, self.sky[1][1], 0.55)
        opacity = 0.75 if time != "night" else 0.5
        for _ in range(count):
            cx, cy = rng.uniform(-0.1, 1.1) * self.width, rng.uniform(0.08, 0.8) * horizon
            span = self.u(rng.uniform(100, 320))
            puffs, shadows = [], []
            for _ in range(rng.randint(5, 9)):
                ex = cx + rng.uniform(-0.5, 0.5) * span
                rx = span * rng.uniform(0.15, 0.32)
                ry = rx * rng.uniform(0.45, 0.8)
                ey = cy - ry * rng.uniform(0.0, 0.6)
                puffs.append(("ellipse", (ex - rx, ey - ry, ex + rx, cy + ry * 0.25), 255))
                shadows.append(("ellipse", (ex - rx, ey - ry * 0.4, ex + rx, cy + ry * 0.45), 255))
            paste_blurred(self.img, shade, shadows, self.u(10), opacity * 0.8)
            paste_blurred(self.img, colour, puffs, self.u(10), opacity)

    def fog(self, y, spread, strength):
        wobble = value_noise(self.nrng, max(2, self.width // 8), 4, True)

        def field(xs, ys):
            column = np.interp(xs, np.linspace(0, self.width, len(wobble)), wobble)
            return strength * np.exp(-(((ys - y) / spread) ** 2)) * (0.6 + 0.4 * column)

        paste_soft(self.img, self.horizon_colour, (0, y - 2.5 * spread, self.width, y + 2.5 * spread), field)

    def birds(self, horizon):
        rng = self.rng
        colour = scaled(in_light((40, 40, 50), self.plan.time), 0.8)
        cx, cy = self.width * rng.uniform(0.2, 0.8), horizon * rng.uniform(0.2, 0.55)
        shapes = []
        for _ in range(rng.randint(3, 7)):
            x, y = cx + self.u(rng.uniform(-140, 140)), cy + self.u(rng.uniform(-60, 60))
            s = self.u(rng.uniform(7, 14))
            shapes.append(("line", [(x - s, y - s * 0.5), (x - s * 0.4, y - s * 0.1), (x, y + s * 0.15)], self.u(2.2), 255))
            shapes.append(("line", [(x, y + s * 0.15), (x + s * 0.4, y - s * 0.1), (x + s, y - s * 0.5)], self.u(2.2), 255))
        paste_shapes(self.img, colour, shapes)

    def vignette(self, strength=0.35):
        self.img.paste((8, 6, 16), (0, 0), vignette_mask(self.width, self.height, strength))

    def sky_and_lights(self, horizon, clouds=None):
        features = self.plan.features
        self.paint_sky(horizon)
        if self.plan.time == "night" or "stars" in features:
            self.stars(horizon)
        if "rain" not in features:
            self.sun(*self.place_sun(horizon))
        if clouds is None:
            clouds = self.rng.randint(2, 5) if ("clouds" in features or "rain" in features) else self.rng.choice((0, 0, 1, 2, 3))
        if clouds:
            self.clouds(horizon, clouds)
        if "birds" in features or (self.plan.time != "night" and self.rng.random() < 0.25):
            self.birds(horizon)

    def rain(self):
        rng = self.rng
        draw_shapes = []
        slant = self.u(rng.uniform(-12, 12))
        for _ in range(int(350 * self.width * self.height / 1024**2)):
            x, y = rng.uniform(-20, self.width + 20), rng.uniform(0, self.height)
            length = self.u(rng.uniform(14, 34))
            draw_shapes.append(("line", [(x, y), (x + slant * length / 30, y + length)], self.u(1.2), 255))
        paste_shapes(self.img, (210, 216, 230), draw_shapes, opacity=0.35, aa=1)


@dataclass
class Layer:
    """One terrain layer of a landscape, painted far to near."""

    ridge: np.ndarray
    top: tuple
    bottom: tuple
    extra: list = field(default_factory=list)
    floor: float | None = None


def paint_layers(s, layers, between=None):
    """Paint layers far to near; each stops where the next one covers every column, which saves most of the work."""
    for i, layer in enumerate(layers):
        stop = float(layers[i + 1].ridge.max()) + 1 if i + 1 < len(layers) else None
        paint_terrain(s.img, layer.ridge, layer.top, layer.bottom, layer.extra, floor=layer.floor, stop=stop)
        if between and i + 1 < len(layers):
            between(i, layer)
