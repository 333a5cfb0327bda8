"""What every command that talks to a Goodeye server over HTTP shares: options, exit codes, errors.

Exit codes (documented in the README): 0 success, 1 any other API error,
2 usage error (click's), 3 authentication, 4 not found, 5 server unreachable,
6 a confirmation was declined.
"""

import functools

import click

from goodeye.cli.common import fail
from goodeye.client import ApiError, ClientError, ConnectionFailed, GoodeyeClient, client_settings

EXIT_API_ERROR = 1
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_UNREACHABLE = 5
EXIT_NOT_CONFIRMED = 6


def exit_code_for(error):
    """The process exit code for a client error."""
    if isinstance(error, ConnectionFailed):
        return EXIT_UNREACHABLE
    # A full quota is a 403 too, but no other key would help: an ordinary API error.
    if isinstance(error, ApiError) and error.status in (401, 403) and error.slug != "quota_exceeded":
        return EXIT_AUTH
    if isinstance(error, ApiError) and error.status == 404:
        return EXIT_NOT_FOUND
    return EXIT_API_ERROR


def _reporting_errors(invoke, ctx):
    try:
        return invoke(ctx)
    except ClientError as exc:
        if exc.slug == "auth_required":
            click.echo("hint: run `goodeye login`, set GOODEYE_API_KEY or pass --api-key", err=True)
        fail(f"{exc.slug}: {exc.message}", exit_code_for(exc))


class RemoteGroup(click.Group):
    """A group whose commands print `error: slug: message` on stderr and exit with the code for it."""

    def invoke(self, ctx):
        return _reporting_errors(super().invoke, ctx)


class RemoteCommand(click.Command):
    """A lone command that reports client errors like RemoteGroup's commands."""

    def invoke(self, ctx):
        return _reporting_errors(super().invoke, ctx)


def server_options(fn):
    """Add --url and --api-key; the command receives `settings` (ClientSettings) instead."""

    @click.option("--url", metavar="URL", help="Goodeye server (default: $GOODEYE_URL, the saved config, http://127.0.0.1:8080).")
    @click.option("--api-key", metavar="KEY", help="Project API key (default: $GOODEYE_API_KEY, then the saved config).")
    @functools.wraps(fn)
    def wrapper(*args, url, api_key, **kwargs):
        return fn(*args, settings=client_settings(url=url, api_key=api_key), **kwargs)

    return wrapper


def remote_command(fn):
    """Add --url, --api-key and --json; the command receives `client` (GoodeyeClient) and `as_json`."""

    @server_options
    @click.option("--json", "as_json", is_flag=True, help="Print the full JSON response on stdout.")
    @functools.wraps(fn)
    def wrapper(*args, settings, **kwargs):
        return fn(*args, client=GoodeyeClient(settings), **kwargs)

    return wrapper
