"""`goodeye serve`: the whole stack in the foreground until SIGINT or SIGTERM."""

import signal
import time

import click

from goodeye import migrations
from goodeye.config import ConfigError, check_serving, load_settings
from goodeye.db import open_database, using
from goodeye.identity import service as identity
from goodeye.models import Org
from goodeye.stack import Stack, StackError

DEMO_PROJECT = "demo/website"
# Writes dot.png, a 1x1 PNG, with nothing but Python (the README uses the same line).
DOT_PNG_MAKER = (
    "python3 -c \"import zlib,struct;c=lambda t,d:struct.pack('>I',len(d))+t+d+struct.pack('>I',zlib.crc32(t+d));"
    "open('dot.png','wb').write(b'\\x89PNG\\r\\n\\x1a\\n'+c(b'IHDR',struct.pack('>IIBBBBB',1,1,8,2,0,0,0))"
    "+c(b'IDAT',zlib.compress(b'\\x00\\xff\\x00\\x00'))+c(b'IEND',b''))\""
)


def _first_run_demo():
    """On an empty database, create a demo org/project and return its key (else None)."""
    if Org.select().exists():
        return None
    identity.create_org("demo")
    project, _ = identity.create_project(DEMO_PROJECT)
    _row, plaintext = identity.create_key(project, "demo")
    return plaintext


def _try_lines(base_url, key):
    """Commands that work when pasted: make a 1x1 PNG, upload it, generate an image."""
    return (
        f"Try:\n  export GOODEYE={base_url} KEY={key}\n"
        f"  {DOT_PNG_MAKER}\n"
        '  curl -s -H "Authorization: Bearer $KEY" -F file=@dot.png -F visibility=public $GOODEYE/v1/images\n'
        '  curl -s -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" '
        "-d '{\"prompt\": \"a lighthouse at dusk\"}' $GOODEYE/v1/image-generators/builtin/generate"
    )


@click.command()
@click.option("--no-demo", is_flag=True, help="Do not create the demo project on an empty database.")
def serve(no_demo):
    """Run gunicorn, nginx and the sweeper on GOODEYE_PORT until interrupted."""
    try:
        settings = load_settings()
        check_serving(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    db = open_database(settings)
    with using(db), db.connection_context():
        migrations.migrate()
    stack = Stack()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    try:
        stack.start()
    except StackError as exc:
        stack.stop()
        raise click.ClickException(str(exc))
    try:
        # Only once the stack answers: a start that failed made no key, so the next one still can.
        with using(db), db.connection_context():
            demo_key = None if no_demo else _first_run_demo()
        # This process serves nothing itself: it keeps no connection while the stack runs.
        db.close_all()
        click.echo(f"Goodeye is serving on {stack.url} (data in {settings.data_dir}, database {settings.database.split('@')[-1]})")
        if demo_key:
            click.echo(f"First run: created project {DEMO_PROJECT} with API key (shown once):\n  {demo_key}")
            click.echo(_try_lines(settings.base_url, demo_key))
        click.echo("Press Ctrl+C to stop.")
        while not stopping:
            dead = [name for name, proc in stack.processes.items() if proc.poll() is not None]
            if dead:
                logs = "the log lines above" if settings.log_to == "stdout" else f"{settings.run_dir}/*.log"
                raise click.ClickException(f"{', '.join(dead)} exited; see {logs}")
            time.sleep(0.5)
    finally:
        stack.stop()
        click.echo("Goodeye stopped.")
