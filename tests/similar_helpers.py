"""Pictures for the similar-image tests: scenes, their near-duplicates, and synthetic hash rows."""

import io
import random

from PIL import Image, ImageDraw, ImageEnhance

from goodeye.ids import new_id
from goodeye.models import Image as ImageRow
from goodeye.similar.bands import HASH_BITS, hash_hex, phash_columns


def scene(seed, size=(320, 240)):
    """A PNG of a made-up scene (a gradient sky, shapes); different seeds give unrelated scenes."""
    rng = random.Random(seed)
    picture = Image.new("RGB", size)
    draw = ImageDraw.Draw(picture)
    top, bottom = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(2)]
    for y in range(size[1]):
        mix = y / size[1]
        draw.line([(0, y), (size[0], y)], fill=tuple(int(a + (b - a) * mix) for a, b in zip(top, bottom)))
    for _ in range(8):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        w, h = rng.randrange(20, size[0] // 2), rng.randrange(20, size[1] // 2)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x - w // 2, y - h // 2, x + w // 2, y + h // 2], fill=tuple(rng.randrange(256) for _ in range(3)))
    return encode(picture, "PNG")


def noise(seed, size=(320, 240)):
    """A PNG of random noise."""
    return encode(Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3)), "PNG")


def encode(picture, fmt, **options):
    """The bytes of a Pillow image in `fmt`."""
    out = io.BytesIO()
    picture.save(out, fmt, **options)
    return out.getvalue()


def near_duplicates(data):
    """{how: bytes} of copies a person would call the same picture."""
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    return {
        "resized to 90%": encode(picture.resize((picture.width * 9 // 10, picture.height * 9 // 10)), "PNG"),
        "JPEG quality 70": encode(picture, "JPEG", quality=70),
        "brightened 10%": encode(ImageEnhance.Brightness(picture).enhance(1.1), "PNG"),
        "WebP": encode(picture, "WEBP", quality=80),
    }


def flip_bits(bits, count, rng):
    """`bits` (a 64-bit integer) with `count` distinct random bits flipped."""
    for position in rng.sample(range(HASH_BITS), count):
        bits ^= 1 << position
    return bits


def synthetic_rows(project_id, hashes, expires_at=None):
    """Image rows (as insert_many dicts) with these 64-bit hashes and made-up bytes."""
    rows = []
    for bits in hashes:
        phash = hash_hex(bits)
        rows.append(
            {
                "id": new_id("img"),
                "token": new_id("tok"),
                "project": project_id,
                "sha256": "0" * 64,
                "content_type": "image/png",
                "ext": "png",
                "size_bytes": 1,
                "width": 1,
                "height": 1,
                "phash": phash,
                **phash_columns(phash),
                "filename": new_id("f"),
                "expires_at": expires_at,
            }
        )
    return rows


def insert_rows(rows, batch=500):
    """Insert rows in multi-row INSERTs."""
    for start in range(0, len(rows), batch):
        ImageRow.insert_many(rows[start : start + batch]).execute()
