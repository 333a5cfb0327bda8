"""Generate images and host every output (README "Image generation").

`generate_and_host` is the one entry point, used by the `/v1` generation API and
by live URLs. It takes a GenerationRequest checked where the request came in
(goodeye/generation/requests.py), enhances the prompt, calls the generator, turns every output into bytes (inline bytes as they are, provider
URLs through the SSRF-safe fetcher), and stores each accepted one as an image
with `source="generated"`. It does no rate limiting: callers do.

Decisions:
- `image_urls[i]` is the provider's URL when the output came with one (so it is
  the fallback when slot i could not be hosted), else the hosted image's URL
  (builtin, b64_json), else None: an inline output that was not an accepted
  image and came with no URL has nothing to fall back to. An output that
  matches the operator's blocklist gets None in both lists: its provider URL is
  not handed out either.
- The generation row is written with the images, in one transaction, after the
  provider answered and every URL was fetched (fetches hold no database lock).
  Its status is `succeeded` (every output hosted), `partial` (some slots null;
  `error` says why for each) or `failed` (the provider failed; no image).
- Quotas: a project with no room for even one more image gets 403
  `quota_exceeded` before the generator is called (nothing is spent); outputs
  past the quota once it runs are `null` slots (status `partial`).
- Anonymous generations belong to the built-in project `goodeye-system/anonymous`,
  created on first use, with no keys and with new live scopes disabled, so no
  one can use it as a live-URL generator. Those slugs are reserved.
"""

import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from goodeye import metrics
from goodeye.db import database, retry_on_deadlock
from goodeye.errors import (
    GenerationFailed,
    ImageBlocked,
    ImageTooComplex,
    ImageTooLarge,
    ImageTooLargeDimensions,
    InvalidImage,
    QuotaExceeded,
    RateLimited,
    UnsupportedImageType,
)
from goodeye.generation.enhance import enhance_checked
from goodeye.generation.fetch import FetchError, fetch_image_bytes
from goodeye.identity.service import create_org, create_project
from goodeye.ids import new_id
from goodeye.images.service import (
    Placement,
    image_url,
    insert_validated,
    record_created,
    validated_bytes,
)
from goodeye.images.validation import sniff_format
from goodeye.models import Generation, Image, Org, Project
from goodeye.projects.quota import check_room

log = logging.getLogger(__name__)

SYSTEM_ORG = "goodeye-system"
ANONYMOUS_PROJECT = "anonymous"
ANONYMOUS_LIMIT_NAMESPACE = "anon-generate"
# Why an output may not be hosted: not one of the accepted images, or a blocked picture.
_NOT_ACCEPTED = (UnsupportedImageType, InvalidImage, ImageTooLarge, ImageTooLargeDimensions, ImageTooComplex, ImageBlocked)
_FILENAME_WORDS = 6


@dataclass
class GenerationResult:
    """A finished generation: its row, and per output the URL and the hosted image (or None)."""

    generation: Generation
    image_urls: list[str | None]  # see the module docstring for what each entry holds
    hosted: list[Image | None]  # aligned 1:1 with image_urls
    refusals: list[Exception | None]  # aligned too: why a slot's bytes were refused, when they were
    over_quota: bool = False  # some output was not hosted because the project's quota was full


def take_anonymous_generation(ctx, ip):
    """Count one anonymous generation for this client IP, or RateLimited with Retry-After."""
    state = ctx.limiter.hit(ctx.settings.anonymous_generation_limit, ANONYMOUS_LIMIT_NAMESPACE, ip)
    if not state.allowed:
        raise RateLimited(
            "Too many anonymous generations from this address; retry later or use an API key.",
            headers={"Retry-After": str(max(1, state.reset_seconds)), **state.headers()},
        )
    return state


def anonymous_project_id():
    """The id of the built-in project that owns anonymous generations, created on first use."""
    row = (
        Project.select(Project.id)
        .join(Org)
        .where((Org.slug == SYSTEM_ORG) & (Project.slug == ANONYMOUS_PROJECT))
        .tuples()
        .first()
    )
    if row is not None:
        return row[0]
    create_org(SYSTEM_ORG)
    project, _created = create_project(f"{SYSTEM_ORG}/{ANONYMOUS_PROJECT}", allow_new_live_scopes=False)
    return project.id


def generate_and_host(ctx, request, *, project_id, placement, client_ip=None):
    """Generate what a GenerationRequest asks for and host each output with `placement`; GenerationFailed if the provider fails."""
    generator = request.generator
    check_room(project_id, images=1)
    started = time.monotonic()
    enhanced = enhance_checked(request.prompt, request.template, chat=ctx.generators.enhancer) if request.auto_enhance else None
    row = {
        "id": new_id("gen"),
        "project": project_id,
        "generator": generator.id,
        "prompt": request.prompt,
        "enhanced_prompt": enhanced,
        "client_ip": client_ip,
    }
    request_params = request.params()
    try:
        outputs = generator.generate(enhanced or request.prompt, request.n, request.aspect_ratio, request.seed)
    except GenerationFailed as exc:
        Generation.create(
            **row,
            params=json.dumps(request_params),
            status="failed",
            error=exc.message,
            duration_ms=_elapsed_ms(started),
        )
        metrics.count_generation(generator.id, "failed")
        raise
    payloads = _collect_bytes(ctx, outputs)
    # Validated before the transaction, so no row lock waits on decoding.
    candidates = [
        _validated_output(ctx, placement, request.prompt, row["id"], index, data, reason)
        for index, (data, reason) in enumerate(payloads)
    ]
    generation, hosted, refusals, over_quota = _host_outputs(
        ctx, project_id, candidates, row, request_params, enhanced, generator.id, started
    )
    for image in hosted:
        if image is not None:
            record_created(ctx, image)
    metrics.count_generation(generator.id, "quota_exceeded" if over_quota else generation.status)
    if generation.error:
        log.info("generation %s not fully hosted: %s", generation.id, generation.error)
    image_urls = [
        None if isinstance(refusal, ImageBlocked) else output.url or (image_url(ctx.settings, image) if image else None)
        for output, image, refusal in zip(outputs, hosted, refusals)
    ]
    return GenerationResult(
        generation=generation, image_urls=image_urls, hosted=hosted, refusals=refusals, over_quota=over_quota
    )


@dataclass
class _Candidate:
    """One output on its way to being hosted: validated bytes, or why there are none."""

    data: bytes = None
    info: object = None
    placement: Placement = None
    reason: str = None
    refusal: Exception = None


def _validated_output(ctx, placement, prompt, generation_id, index, data, reason):
    if data is None:
        return _Candidate(reason=reason)
    try:
        data, info = validated_bytes(ctx, data, placement.strip_metadata)
    except _NOT_ACCEPTED as exc:
        return _Candidate(reason=exc.message, refusal=exc)
    return _Candidate(data=data, info=info, placement=_placement_for(placement, prompt, generation_id, index, data))


@retry_on_deadlock
def _host_outputs(ctx, project_id, candidates, row, request_params, enhanced, generator_id, started):
    """In one transaction, the images of the validated outputs and the generation row:
    (generation, images with None where an output is not hosted, refusals, whether the quota refused one)."""
    hosted, reasons, refusals, over_quota = [], [], [], False
    with database.atomic():
        for index, candidate in enumerate(candidates):
            image, reason = None, candidate.reason
            if candidate.data is not None:
                try:
                    image = insert_validated(
                        ctx,
                        project_id,
                        candidate.data,
                        candidate.info,
                        candidate.placement,
                        source="generated",
                        generation_params={
                            "generation_id": row["id"],
                            "generator": generator_id,
                            "prompt": row["prompt"],
                            "enhanced_prompt": enhanced,
                            "index": index,
                            **request_params,
                        },
                    )
                except QuotaExceeded as exc:
                    reason, over_quota = exc.message, True
            hosted.append(image)
            refusals.append(candidate.refusal)
            if image is None:
                reasons.append(f"output {index}: {reason or 'no image'}")
        generation = Generation.create(
            **row,
            params=json.dumps({**request_params, "outputs": len(candidates)}),
            status="partial" if reasons else "succeeded",
            error="; ".join(reasons) or None,
            duration_ms=_elapsed_ms(started),
        )
    return generation, hosted, refusals, over_quota


def _elapsed_ms(started):
    return int((time.monotonic() - started) * 1000)


def _collect_bytes(ctx, outputs):
    """(bytes or None, why not) per output; provider URLs are fetched in parallel under the fetch rules."""
    settings = ctx.settings

    def collect(output):
        if output.data:
            return output.data, None
        if not output.url:
            return None, "the provider gave neither bytes nor a URL"
        try:
            return (
                fetch_image_bytes(
                    output.url,
                    allowlist=ctx.generators.allowlist,
                    max_bytes=ctx.image_limits.max_bytes,
                    timeout_seconds=settings.fetch_max_seconds,
                ),
                None,
            )
        except FetchError as exc:
            return None, f"not fetched: {exc}"

    fetches = [output for output in outputs if not output.data and output.url]
    if len(fetches) <= 1:
        return [collect(output) for output in outputs]
    # In parallel, so n slow URLs cost one fetch cap, not n, within nginx's upstream timeout.
    with ThreadPoolExecutor(max_workers=len(outputs)) as pool:
        return list(pool.map(collect, outputs))


def _placement_for(placement, prompt, generation_id, index, data):
    """A readable, project-unique filename such as `red-fox-in-snow-3kQ9xY2a-1.jpg`."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())[:_FILENAME_WORDS]
    stem = "-".join(words)[:60].strip("-") or "generated"
    fmt = sniff_format(data)
    ext = f".{'jpg' if fmt == 'JPEG' else fmt.lower()}" if fmt else ""
    filename = f"{stem}-{generation_id.removeprefix('gen_')[:8]}-{index + 1}{ext}"
    return Placement(visibility=placement.visibility, ttl_seconds=placement.ttl_seconds, filename=filename)
