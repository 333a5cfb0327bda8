"""Small real images made on the fly."""

import io
import random

from PIL import Image


def image_bytes(fmt="PNG", size=(64, 48), color=None, **save_args):
    """Encode a small image; a random colour unless one is given, so bytes differ between calls."""
    color = color or tuple(random.randrange(256) for _ in range(3))
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt, **save_args)
    return buffer.getvalue()


def png(size=(64, 48), color=None):
    """A PNG."""
    return image_bytes("PNG", size, color)


def jpeg(size=(64, 48), color=None):
    """A JPEG."""
    return image_bytes("JPEG", size, color, quality=90)


def webp(size=(64, 48), color=None):
    """A WebP."""
    return image_bytes("WEBP", size, color)


def gif(size=(64, 48), color=None):
    """A GIF."""
    return image_bytes("GIF", size, color)
