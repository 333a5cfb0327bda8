"""Output helpers shared by every command: JSON or short human lines, errors on stderr."""

import json
import sys

import click

from goodeye.errors import GoodeyeError


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
