"""`goodeye login`: save the server URL and an API key for the other client commands."""

import click

from goodeye.cli.common import emit
from goodeye.cli.remote import RemoteCommand
from goodeye.client import GoodeyeClient, client_settings, config_path, write_config


@click.command(cls=RemoteCommand)
@click.option("--url", metavar="URL", help="Goodeye server (default: $GOODEYE_URL, else http://127.0.0.1:8080).")
@click.option("--api-key", metavar="KEY", help="Project API key (default: $GOODEYE_API_KEY, else asked without echo).")
@click.option("--no-verify", is_flag=True, help="Save without checking the key against the server.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def login(url, api_key, no_verify, as_json):
    """Check a key against the server and save it (file mode 0600) for later commands."""
    settings = client_settings(url=url, api_key=api_key, use_saved=False)
    if not settings.api_key:
        settings = client_settings(url=settings.url, api_key=click.prompt("API key", hide_input=True, err=True), use_saved=False)
    if not no_verify:
        # The cheapest call that needs a valid key: a 401 here means the key is wrong.
        GoodeyeClient(settings).list_images(limit=1)
    path = config_path()
    write_config(path, settings.url, settings.api_key)
    emit(as_json, {"url": settings.url, "config": path, "verified": not no_verify}, f"saved {settings.url} and key to {path}")
