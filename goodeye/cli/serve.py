"""`goodeye serve`: the whole stack in the foreground until SIGINT or SIGTERM."""

import signal
import time

import click

from goodeye import migrations
from goodeye.config import load_settings
from goodeye.db import database, init_database
from goodeye.identity import service as identity
from goodeye.models import Org
from goodeye.stack import Stack, StackError

DEMO_PROJECT = "demo/website"


def _first_run_demo():
    """On an empty database, create a demo org/project and return its key (else None)."""
    if Org.select().exists():
        return None
    identity.create_org("demo")
    project, _ = identity.create_project(DEMO_PROJECT)
    _row, plaintext = identity.create_key(project, "demo")
    return plaintext


@click.command()
@click.option("--no-demo", is_flag=True, help="Do not create the demo project on an empty database.")
def serve(no_demo):
    """Run gunicorn, nginx and the sweeper on GOODEYE_PORT until interrupted."""
    settings = load_settings()
    init_database(settings)
    with database.connection_context():
        migrations.migrate()
        demo_key = None if no_demo else _first_run_demo()
    database.close()
    stack = Stack()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    try:
        stack.start()
    except StackError as exc:
        stack.stop()
        raise click.ClickException(str(exc))
    click.echo(f"Goodeye is serving on {stack.url} (data in {settings.data_dir}, database {settings.database.split('@')[-1]})")
    if demo_key:
        click.echo(f"First run: created project {DEMO_PROJECT} with API key (shown once):\n  {demo_key}")
        click.echo(f"Try: curl -H 'Authorization: Bearer {demo_key}' -F file=@image.png {settings.base_url}/v1/images")
    click.echo("Press Ctrl+C to stop.")
    try:
        while not stopping:
            dead = [name for name, proc in stack.processes.items() if proc.poll() is not None]
            if dead:
                raise click.ClickException(f"{', '.join(dead)} exited; see {settings.run_dir}/*.log")
            time.sleep(0.5)
    finally:
        stack.stop()
        click.echo("Goodeye stopped.")
