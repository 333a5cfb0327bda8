"""`goodeye image-generators ...`: list generators and generate hosted images over HTTP."""

import click

from goodeye.cli.common import PERMANENT, Ttl, emit
from goodeye.cli.remote import RemoteGroup, remote_command


@click.group("image-generators", cls=RemoteGroup)
def image_generators():
    """Generate images and host them (talks to a Goodeye server)."""


@image_generators.command("list")
@remote_command
def list_generators(client, as_json):
    """The generators the server offers: id, max n, aspect ratios, name."""
    page = client.list_generators()
    lines = [f"{g['id']}\t{g['max_n']}\t{','.join(g['aspect_ratios'])}\t{g['name']}" for g in page["data"]]
    emit(as_json, page, "\n".join(lines))


@image_generators.command("generate")
@click.argument("generator", default="builtin")
@click.option("--prompt", required=True, help="What to draw.")
@click.option("--n", type=click.IntRange(min=1), help="How many images (default 1; at most the generator's max_n).")
@click.option("--aspect-ratio", metavar="W:H", help="One of the generator's aspect ratios (default 1:1).")
@click.option("--seed", type=int, help="Same prompt, seed and aspect ratio give the same builtin image.")
@click.option("--visibility", type=click.Choice(["private", "public"]), help="Of the hosted images (default: private).")
@click.option("--ttl", type=Ttl(), metavar="TTL", help="The hosted images expire after 3600, 90m, 12h, 7d, 2w or 1y (default: never).")
@remote_command
def generate(generator, prompt, n, aspect_ratio, seed, visibility, ttl, client, as_json):
    """Generate with GENERATOR (default builtin); prints one `id<TAB>url` per image.

    An output that could not be hosted prints `-<TAB>provider-url`.
    """
    generation = client.generate(
        generator, prompt, n=n, aspect_ratio=aspect_ratio, seed=seed, visibility=visibility,
        ttl_seconds=None if ttl == PERMANENT else ttl,
    )
    lines = [
        f"{hosted['id']}\t{hosted['url']}" if hosted else f"-\t{fallback or '-'}"
        for hosted, fallback in zip(generation["hosted_images"], generation["image_urls"])
    ]
    emit(as_json, generation, "\n".join(lines))
