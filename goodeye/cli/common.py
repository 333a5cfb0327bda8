"""Output helpers shared by every command: JSON or short human lines, errors on stderr."""

import json
import os
import re
import sys

import click
from peewee import DatabaseError, InterfaceError

from goodeye.context import Context
from goodeye.db import current_database, database, open_database, sqlite_path, using
from goodeye.errors import GoodeyeError
from goodeye.images.requests import MAX_TTL_SECONDS

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


def _missing_database(settings):
    """Why there is no database to act on (a SQLite file that is not there), in one line, or None."""
    path = sqlite_path(settings.database)
    if path and not os.path.exists(path):
        return (
            f"no database at {os.path.abspath(path)}: run `goodeye admin db init` to create one, "
            "or set GOODEYE_DATA_DIR / GOODEYE_DATABASE_URL to the existing one"
        )
    return None


def _unusable_database(settings, needs_schema):
    """Why the bound database cannot serve an admin command, in one line, or None."""
    name = settings.database.split("@")[-1]
    try:
        with database.connection_context():
            if needs_schema and not database.table_exists("schema_migration"):
                return f"the database {name} is not initialised: run `goodeye admin db init`"
    except (DatabaseError, InterfaceError) as exc:
        return f"cannot open the database {name}: {exc}"
    return None


class AdminCommand(click.Command):
    """A command on the configured database; refused in one line when there is none to act on.

    `needs` says what must be there already: "schema" (most commands), "database"
    (migrations may initialise an empty one) or nothing (`db init` creates it).
    """

    def __init__(self, *args, needs="schema", **kwargs):
        self.needs = needs
        super().__init__(*args, **kwargs)

    def invoke(self, ctx):
        settings = ctx.obj
        # Checked before binding: opening a SQLite file that is not there would create it.
        problem = self.needs and _missing_database(settings)
        if problem:
            fail(problem)
        # The command's database, used by the models for as long as the command runs.
        db = ctx.with_resource(using(open_database(settings)))
        ctx.call_on_close(db.close_all)
        problem = self.needs and _unusable_database(settings, needs_schema=self.needs == "schema")
        if problem:
            fail(problem)
        return super().invoke(ctx)


def command_context(settings):
    """The Context an admin command passes to service functions, on the database the command uses."""
    return Context.from_settings(settings, database=current_database())


class AdminGroup(GoodeyeGroup):
    """`goodeye admin` and its sub-groups: every command is an AdminCommand."""

    command_class = AdminCommand
    group_class = type
