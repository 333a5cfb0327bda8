"""Random identifiers: management ids and the random part of API keys."""

import secrets
import string

BASE62 = string.ascii_letters + string.digits


def base62(length):
    """`length` random base62 characters from `secrets` (5.95 bits each)."""
    return "".join(secrets.choice(BASE62) for _ in range(length))


def new_id(prefix):
    """A management id such as `img_...` (22 base62 characters, 130 bits)."""
    return f"{prefix}_{base62(22)}"
