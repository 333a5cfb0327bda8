"""The `goodeye` command: one root click group, a sub-group per concern."""

import click
from click.shell_completion import get_completion_class

from goodeye.cli.admin import admin
from goodeye.cli.generators import image_generators
from goodeye.cli.images import images
from goodeye.cli.login import login
from goodeye.cli.mcp_cmd import mcp
from goodeye.cli.serve import serve
from goodeye.cli.usage import usage


@click.group()
@click.version_option(package_name="goodeye")
def main():
    """Goodeye: host images at stable URLs, generate them, serve them through nginx."""


main.add_command(admin)
main.add_command(serve)
main.add_command(images)
main.add_command(image_generators)
main.add_command(login)
main.add_command(mcp)
main.add_command(usage)


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the shell completion script: eval "$(goodeye completion bash)" in ~/.bashrc."""
    completer = get_completion_class(shell)(main, {}, "goodeye", "_GOODEYE_COMPLETE")
    click.echo(completer.source())
