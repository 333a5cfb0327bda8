"""Live URLs (README "Live URLs and the CDN"): images made on first request, cached by their query.

A live URL's HIT never generates and touches no limit: one indexed query for the
project, one for the cache entry joined to its image, then nginx streams the
bytes (the same X-Accel-Redirect answer as a public `/v1` image). A MISS
runs, in this order: the scope rules, the claim of the cache key (an insert
under its UNIQUE key, so concurrent MISSes of one key generate once and the
others wait for that image), the per-IP limit, the scope budget (one
conditional UPDATE), the generation. Every step after the claim is undone on
failure: the claim is deleted and the budget slot given back.

Decisions where the contract is silent:
- Requests that lose the claim and then get the winner's image are answered as
  HITs: they generated nothing and were counted against no limit.
- The per-IP limit is tested before the budget is taken and hit after it, so a
  request refused by the budget costs the client nothing; a failed generation
  gives the budget slot back but not the per-IP hit (generating cost us).
- A scope a live URL names that does not exist yet is created only once the
  request's per-IP hit is taken, in one transaction with the request's claim of
  its key, so a refused request leaves no scope and concurrent requests for the
  same new URL wait for the creator's image without being charged.
- The prompt is whitespace-normalised before it enters the cache key, as the
  generator sees it.
"""

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from peewee import IntegrityError

from goodeye.db import Prepared, database, for_update, retry_on_deadlock
from goodeye.errors import (
    Forbidden,
    GenerationFailed,
    ImageBlocked,
    ImageNotFound,
    InvalidRequest,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
)
from goodeye.generation.requests import GenerationRequest
from goodeye.generation.service import generate_and_host
from goodeye.ids import new_id
from goodeye.images.service import Placement, remove_images, update_image_rows
from goodeye.models import Image, LiveCacheEntry, LiveScope, Project, PromptUrlCache, utcnow
from goodeye.projects.quota import check_room
from goodeye.serving.check import SERVABLE_COLUMNS, ServableImage

SCOPE_SLUG = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
LIVE_GENERATOR = "builtin"
LIVE_LIMIT_NAMESPACE = "live"
POLL_SECONDS = 0.1
RETRY_SOON = {"Retry-After": "5"}



@dataclass(frozen=True)
class LiveRequest:
    """The query of a live URL, validated: what the cache key is made of."""

    prompt: str
    aspect_ratio: str = "1:1"
    auto_enhance: bool = True
    template: str = "general"

    def cache_key(self, project_id, scope_slug):
        """SHA-256 over project id + scope + prompt + aspectRatio + autoEnhance + template."""
        material = json.dumps([project_id, scope_slug, self.prompt, self.aspect_ratio, self.auto_enhance, self.template])
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def params(self):
        """The generation parameters kept with the cache entry, so regenerate can repeat them."""
        return {
            "generator": LIVE_GENERATOR,
            "prompt": self.prompt,
            "aspect_ratio": self.aspect_ratio,
            "auto_enhance": self.auto_enhance,
            "template": self.template,
        }

    def generation(self, generators):
        """The GenerationRequest of this live query: its one public image from the live generator."""
        return GenerationRequest(
            generator=generators.get(LIVE_GENERATOR),
            prompt=self.prompt,
            aspect_ratio=self.aspect_ratio,
            auto_enhance=self.auto_enhance,
            template=self.template,
        )


@dataclass
class LiveOutcome:
    """What a live URL answers with: the image, HIT or MISS, and on a MISS its generation and limit state."""

    image: ServableImage
    cache_status: str
    generation_id: str | None = None
    limit_state: object = None


def check_scope_slug(slug):
    """The slug if it matches `^[A-Za-z0-9_-]{1,64}$`, else 400 SCOPE_INVALID_FORMAT."""
    if not isinstance(slug, str) or not SCOPE_SLUG.match(slug):
        raise InvalidRequest("Scope slugs are 1-64 of A-Z, a-z, 0-9, '_' and '-'.", code="SCOPE_INVALID_FORMAT")
    return slug


_LIVE_HIT = Prepared(lambda p: LiveCacheEntry.select(*SERVABLE_COLUMNS).join(Image).where(LiveCacheEntry.cache_key == p.cache_key))


def find_cached(cache_key):
    """The image a live cache key names, None when there is none yet; 404 when it is no longer public."""
    row = _LIVE_HIT.one(cache_key=cache_key)
    if row is None:
        return None
    image = ServableImage.from_row(row)
    # The owner made it private or gave it a TTL that ran out: the URL stops serving it.
    if image.visibility != "public" or image.expired():
        raise ImageNotFound()
    return image


# --- scopes ------------------------------------------------------------------


def find_scope(project_id, slug):
    """The project's scope with this slug, None when there is none."""
    return LiveScope.get_or_none((LiveScope.project == project_id) & (LiveScope.slug == slug))


def create_scope_with_claim(ctx, project_id, slug, cache_key, params, ip):
    """Create the scope a live URL names, once its client's limit is taken, with the URL's claim.

    Returns (scope, claim pk or None, limit state or None); when a concurrent request
    created the scope first, this one goes the usual way with the state None (or the
    hit an attempt rolled back after taking, which it does not take again).
    """
    return _create_scope_attempt(ctx, project_id, slug, cache_key, params, ip, [])


@retry_on_deadlock
def _create_scope_attempt(ctx, project_id, slug, cache_key, params, ip, hits):
    # `hits` outlives a rolled-back attempt: a hit kept outside the database (Redis)
    # is not taken again, one the rollback undid (database://) is.
    taken = hits[0] if hits and not ctx.limiter.counts_in_database else None
    with database.atomic():
        # One creator at a time per project: a request that finds the scope made
        # meanwhile is not charged, and the creator holds its key's claim from the
        # start, so concurrent requests for the same new URL wait for its image.
        list(for_update(Project.select(Project.id).where(Project.id == project_id)))
        scope = find_scope(project_id, slug)
        if scope is not None:
            return scope, None, taken
        # Refused here, the transaction leaves nothing behind: no scope.
        state = taken if taken is not None else _ip_limit(ctx, project_id, ip, take=True)
        hits[:] = [state]
        scope = LiveScope.create(id=new_id("scope"), project=project_id, slug=slug, meta="{}")
        entry_pk = LiveCacheEntry.insert(
            cache_key=cache_key, project=project_id, scope=scope.id, params=params, claimed_at=utcnow()
        ).execute()
        return scope, entry_pk, state


def take_budget(scope_id):
    """Take one of the scope's generations, atomically across processes; whether there was one."""
    taken = (
        LiveScope.update(current_generations=LiveScope.current_generations + 1)
        .where((LiveScope.id == scope_id) & (LiveScope.current_generations < LiveScope.new_generations_limit))
        .execute()
    )
    return taken == 1


def give_back_budget(scope_id):
    """Return a generation taken by take_budget (its generation failed)."""
    LiveScope.update(current_generations=LiveScope.current_generations - 1).where(
        (LiveScope.id == scope_id) & (LiveScope.current_generations > 0)
    ).execute()


# --- single flight -------------------------------------------------------------


@retry_on_deadlock
def _claim(model, **fields):
    """Insert a pending row under the model's UNIQUE key; its pk, or None when another request holds it."""
    try:
        with database.atomic():
            return model.insert(claimed_at=utcnow(), **fields).execute()
    except IntegrityError:
        return None


def _release(model, pk):
    """Delete a claim that produced no image, so the next request may claim the key again."""
    model.delete().where((model.pk == pk) & (model.image.is_null())).execute()


def _wait_seconds(settings):
    # Answer before nginx gives up on the upstream (proxy_read_timeout is max(60, provider timeout + 30)).
    return max(30, settings.openai_timeout_seconds + 15)


def stale_claim_age(settings):
    """How old a claim must be to have lost its owner: gunicorn kills a worker stuck longer than its timeout."""
    return timedelta(seconds=max(60, settings.openai_timeout_seconds + 30) + 30)


def _drop_stale_claim(settings, model, key_filter):
    model.delete().where(key_filter & model.image.is_null() & (model.claimed_at < utcnow() - stale_claim_age(settings))).execute()


def generate_live_image(ctx, request, project_id, ip):
    """Generate the one public image without expiry of a GenerationRequest: (generation row, image)."""
    result = generate_and_host(ctx, request, project_id=project_id, placement=Placement(visibility="public"), client_ip=ip)
    image = result.hosted[0]
    if isinstance(result.refusals[0], ImageBlocked):
        raise result.refusals[0]
    if image is None and result.over_quota:
        raise QuotaExceeded()
    if image is None:
        raise GenerationFailed(f"The generated image could not be stored: {result.generation.error or 'no image'}.")
    return result.generation, image


def _rate_limited(code, message, state):
    headers = state.headers()
    if code == "IP_RATE_LIMIT_EXCEEDED":
        headers["Retry-After"] = str(max(1, state.reset_seconds))
    return RateLimited(message, code=code, headers=headers)


def live_generation_limit(settings, project_id):
    """The project's live-URL generations per client address (`limits` notation), else the deployment's."""
    per_hour = Project.select(Project.live_generations_per_ip_per_hour).where(Project.id == project_id).scalar()
    return settings.live_generation_limit if per_hour is None else f"{per_hour}/hour"


def _client_limit(ctx, project_id, ip):
    """(limit, counter) of a client's live generations; counted per project, so a
    visitor of one site's live images spends nothing of another's."""
    return live_generation_limit(ctx.settings, project_id), (LIVE_LIMIT_NAMESPACE, str(project_id), ip)


def _ip_limit(ctx, project_id, ip, *, take):
    """The client's live-generation limit, taking one generation when `take`; RateLimited when none is left."""
    limit, counter = _client_limit(ctx, project_id, ip)
    state = (ctx.limiter.hit if take else ctx.limiter.peek)(limit, *counter)
    if not state.allowed:
        raise _rate_limited("IP_RATE_LIMIT_EXCEEDED", f"At most {limit} new live images per client address.", state)
    return state


def serve_live(ctx, project_id, allow_new_live_scopes, slug, live, ip):
    """Answer a live URL whose key was not cached: wait for a generation in flight, or generate."""
    # Before any scope, claim, limit or budget is taken: a full project generates nothing.
    check_room(project_id, images=1)
    cache_key = live.cache_key(project_id, slug)
    params = json.dumps(live.params())
    scope = find_scope(project_id, slug)
    entry_pk = ip_state = None
    if scope is None:
        if not allow_new_live_scopes:
            raise Forbidden(
                f"Scope {slug!r} does not exist and this project does not create scopes on request.",
                code="SCOPE_CREATION_DISABLED",
            )
        scope, entry_pk, ip_state = create_scope_with_claim(ctx, project_id, slug, cache_key, params, ip)
    if entry_pk is None:
        if not scope.allow_new_generations:
            raise Forbidden(f"Scope {slug!r} does not allow new generations.", code="GENERATION_DISABLED")
        entry_pk, image = _claim_or_wait(ctx, project_id, scope, cache_key, params)
        if image is not None:
            return LiveOutcome(image, "HIT")
    try:
        return _generate_for_claim(ctx, project_id, scope, live, ip, entry_pk, ip_state)
    except BaseException:
        _release(LiveCacheEntry, entry_pk)
        raise


def _claim_or_wait(ctx, project_id, scope, cache_key, params):
    """(this request's claim of the key, None) or (None, the image another request generated for it meanwhile)."""
    deadline = time.monotonic() + _wait_seconds(ctx.settings)
    while True:
        entry_pk = _claim(LiveCacheEntry, cache_key=cache_key, project=project_id, scope=scope.id, params=params)
        if entry_pk is not None:
            return entry_pk, None
        image = find_cached(cache_key)
        if image is not None:
            return None, image
        if time.monotonic() > deadline:
            raise ServiceUnavailable("The image for this URL is still being generated; retry shortly.", headers=RETRY_SOON)
        _drop_stale_claim(ctx.settings, LiveCacheEntry, LiveCacheEntry.cache_key == cache_key)
        time.sleep(POLL_SECONDS)


def _generate_for_claim(ctx, project_id, scope, live, ip, entry_pk, ip_state):
    """Generate the claimed key's image; `ip_state` is the client's limit when serve_live took it already."""
    state = ip_state if ip_state is not None else _ip_limit(ctx, project_id, ip, take=False)
    if not take_budget(scope.id):
        raise _rate_limited(
            "SCOPE_GENERATION_LIMIT_EXCEEDED",
            f"Scope {scope.slug!r} has used its {scope.new_generations_limit} generations.",
            state,
        )
    image = None
    try:
        if ip_state is None:
            state = _ip_limit(ctx, project_id, ip, take=True)
        generation, image = generate_live_image(ctx, live.generation(ctx.generators), project_id, ip)
        _link_generated(entry_pk, scope.id, generation.id, image.pk)
    except BaseException:
        give_back_budget(scope.id)
        if image is not None:
            remove_images(ctx, [image])
        raise
    servable = ServableImage.from_image(image)
    return LiveOutcome(servable, "MISS", generation.id, state)


@retry_on_deadlock
def _link_generated(entry_pk, scope_id, generation_id, image_pk):
    """Make a generated image the claimed key's and the scope's; ServiceUnavailable when the claim went away."""
    with database.atomic():
        linked = (
            LiveCacheEntry.update(image=image_pk, generation_id=generation_id)
            .where((LiveCacheEntry.pk == entry_pk) & LiveCacheEntry.image.is_null())
            .execute()
        )
        if not linked:
            raise ServiceUnavailable("The scope changed while the image was generated; retry.")
        update_image_rows([image_pk], live_scope_id=scope_id)
        LiveScope.update(last_generated_at=utcnow()).where(LiveScope.id == scope_id).execute()


# --- GET /api/v1/live ----------------------------------------------------------


def prompt_hash(prompt):
    """The SHA-256 (hex) under which `prompt_url_cache` keeps a prompt."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def _prompt_hit(ctx, project_id, digest):
    """The cached image of a prompt after counting the hit, None when there is none yet."""
    row = (
        PromptUrlCache.select(PromptUrlCache.pk, Image)
        .join(Image)
        .where((PromptUrlCache.project == project_id) & (PromptUrlCache.prompt_hash == digest))
        .first()
    )
    if row is None:
        return None
    if row.image.expires_at is not None and row.image.expires_at <= utcnow():
        # Its owner gave the image a TTL that ran out: forget it and generate again.
        PromptUrlCache.delete().where(PromptUrlCache.pk == row.pk).execute()
        return None
    PromptUrlCache.update(hit_count=PromptUrlCache.hit_count + 1, last_accessed_at=utcnow()).where(
        PromptUrlCache.pk == row.pk
    ).execute()
    return PromptUrlCache.select(PromptUrlCache, Image).join(Image).where(PromptUrlCache.pk == row.pk).first()


def prompt_image(ctx, project_id, prompt, ip):
    """The project's image for a checked prompt, generated once (public, no expiry): (cache row, 'HIT' or 'MISS')."""
    digest = prompt_hash(prompt)
    key_filter = (PromptUrlCache.project == project_id) & (PromptUrlCache.prompt_hash == digest)
    deadline = time.monotonic() + _wait_seconds(ctx.settings)
    while True:
        row = _prompt_hit(ctx, project_id, digest)
        if row is not None:
            return row, "HIT"
        pk = _claim(PromptUrlCache, project=project_id, prompt_hash=digest)
        if pk is not None:
            break
        if time.monotonic() > deadline:
            raise ServiceUnavailable("The image for this prompt is still being generated; retry shortly.", headers=RETRY_SOON)
        _drop_stale_claim(ctx.settings, PromptUrlCache, key_filter)
        time.sleep(POLL_SECONDS)
    image = None
    try:
        _generation, image = generate_live_image(ctx, LiveRequest(prompt).generation(ctx.generators), project_id, ip)
        linked = (
            PromptUrlCache.update(image=image.pk, last_accessed_at=utcnow())
            .where((PromptUrlCache.pk == pk) & PromptUrlCache.image.is_null())
            .execute()
        )
        if not linked:
            raise ServiceUnavailable("The prompt cache changed while the image was generated; retry.")
    except BaseException:
        _release(PromptUrlCache, pk)
        if image is not None:
            remove_images(ctx, [image])
        raise
    return PromptUrlCache.select(PromptUrlCache, Image).join(Image).where(PromptUrlCache.pk == pk).first(), "MISS"
