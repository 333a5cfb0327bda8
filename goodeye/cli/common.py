"""Output helpers shared by every command: JSON or short human lines, errors on stderr."""

import json
import re
import sys

import click

from goodeye.errors import GoodeyeError
from goodeye.images.service import MAX_TTL_SECONDS

# What a --ttl of `permanent` gives: no expiry (distinct from None, "not given").
PERMANENT = "permanent"
TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_TTL_TEXT = re.compile(r"([0-9]{1,12})([smhdwy]?)", re.IGNORECASE)


def emit(as_json, payload, human):
    """Print `payload` as JSON, or the human text."""
    if as_json:
        click.echo(json.dumps(payload, indent=2, sort_keys=False))
    else:
        click.echo(human)


def fail(message, code=1):
    """Print an error on stderr and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class GoodeyeGroup(click.Group):
    """A group whose commands turn domain errors into `error: slug: message` and exit 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GoodeyeError as exc:
            fail(f"{exc.slug}: {exc.message}")


class Ttl(click.ParamType):
    """A TTL as people write it: seconds (3600) or with a unit (90m, 12h, 7d, 2w, 1y), or `permanent`."""

    name = "ttl"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == PERMANENT:
            return value
        match = _TTL_TEXT.fullmatch(value.strip())
        if not match:
            self.fail(f"{value!r} is not a TTL: use seconds (3600), a unit (90m, 12h, 7d, 2w, 1y) or 'permanent'", param, ctx)
        seconds = int(match.group(1)) * TTL_UNITS[(match.group(2) or "s").lower()]
        if seconds < 1:
            self.fail(f"{value!r}: a TTL must be at least one second", param, ctx)
        if seconds > MAX_TTL_SECONDS:
            self.fail(f"{value!r} is longer than the 10-year limit ({MAX_TTL_SECONDS} seconds)", param, ctx)
        return seconds
