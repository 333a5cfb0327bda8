"""Variants on the serving URLs: what the views call, so each serving view stays a few lines."""

from dataclasses import replace

from flask import request

from goodeye.errors import InvalidRequest
from goodeye.http import client_ip
from goodeye.models import Image
from goodeye.serving import decide
from goodeye.variants.params import check_written_plainly, parse_variant_params
from goodeye.variants.service import find_variant, variant_of


def requested_variant(ctx):
    """The VariantSpec this request's query asks for, None when it names none; 400 on a bad value."""
    check_written_plainly(request.query_string)
    return parse_variant_params(request.args, ctx.settings.variant_sizes)


def as_variant(ctx, image, spec, *, anonymous):
    """The image to serve: `image` itself, or its variant (rendered on first request) when `spec` asks for one.

    An original the app serves is also asked for as a link: on S3 this node then
    copies it, if public, so that nginx serves the next request alone.
    """
    if spec is None:
        if ctx.links is not None:
            ctx.links.want(image)
        return image
    ip = client_ip() if anonymous else None
    return variant_of(ctx, image, spec, accept=request.headers.get("Accept"), anonymous_ip=ip)


def vary_headers(spec):
    """`Vary: Accept` when the output format was negotiated from Accept."""
    return {"Vary": "Accept"} if spec is not None and spec.negotiated else {}


def decision(ctx, image, cache_control_at, **granted):
    """nginx's reusable decision for a public image's URL, its variant parameters included.

    A variant already rendered is served from its own link, like the original; a
    first render, and any bad parameter, goes to the app. nginx keys the kept
    decision on the query and on the format it derived from Accept, and sends
    that format as X-Goodeye-Accept-Format.
    """
    try:
        spec = requested_variant(ctx)
    except InvalidRequest:
        return decide.pass_to_app()
    if spec is None:
        return decide.granted(ctx, image, cache_control_at, **granted)
    if ctx.links is None:
        return decide.pass_to_app()
    accepted = {request.headers.get("X-Goodeye-Accept-Format", "")}
    render_spec = spec.resolve(image.content_type, accepted)
    if render_spec.is_identity:
        return decide.granted(ctx, image, cache_control_at, **granted)
    row = find_variant(image.sha256, render_spec.key)
    if row is None:
        return decide.pass_to_app()
    sha256, content_type, size_bytes = row
    link = ctx.links.add_variant(image, sha256)
    if link is None:
        return decide.pass_to_app()
    if not _still_served(image):
        # Made private, deleted or changed while the link was made: that change
        # removes the token's links, but may have done so before this one existed.
        ctx.links.discard(link)
        return decide.pass_to_app()
    variant = replace(image, sha256=sha256, content_type=content_type, size_bytes=size_bytes)
    return decide.granted(ctx, variant, cache_control_at, link=link, **granted)


def _still_served(image):
    row = Image.select(Image.visibility, Image.sha256, Image.expires_at, Image.updated_at).where(Image.token == image.token).first()
    return row is not None and (row.visibility, row.sha256, row.expires_at, row.updated_at) == (
        "public", image.sha256, image.expires_at, image.updated_at
    )
