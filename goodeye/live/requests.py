"""Live and scope requests read once at the edge: a live URL's query, the scopes API's bodies and pages."""

import json
from dataclasses import dataclass

from goodeye.errors import InvalidRequest
from goodeye.generation.base import aspect_ratio_size
from goodeye.generation.enhance import check_template, normalise
from goodeye.generation.requests import MAX_PROMPT_CHARS
from goodeye.live.service import LiveRequest, check_scope_slug
from goodeye.parsing import boolean_field, flag, refuse_unknown_fields, whole_number

MAX_LIST_LIMIT = 100
MAX_META_BYTES = 16 * 1024
MAX_GENERATIONS_LIMIT = 2**31 - 1
SETTINGS_FIELDS = ("allowNewGenerations", "newGenerationsLimit", "meta")

# The JSON types of the bodies' fields, as goodeye/openapi.yaml declares them. A slug of
# any other type is refused by the slug check itself, as SCOPE_INVALID_FORMAT.
SCOPE_JSON_TYPES = {
    "allowNewGenerations": ("boolean",),
    "newGenerationsLimit": ("integer",),
    "meta": ("object",),
}
REGENERATE_JSON_TYPES = {"imageId": ("string",)}


@dataclass(frozen=True)
class ScopePage:
    """A page request of `GET /api/v1/live/scopes`: an optional slug filter, page size and offset."""

    slug: str | None
    limit: int
    offset: int


def check_prompt(prompt):
    """A whitespace-normalised, non-empty prompt within the length limit, else VALIDATION_ERROR."""
    if not isinstance(prompt, str) or not normalise(prompt):
        raise InvalidRequest("prompt is required.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"prompt may be at most {MAX_PROMPT_CHARS} characters.")
    return normalise(prompt)


def live_query(args):
    """A LiveRequest from a live URL's query string (prompt, aspectRatio, autoEnhance, template)."""
    aspect_ratio = args.get("aspectRatio", "1:1")
    aspect_ratio_size(aspect_ratio, "aspectRatio")
    auto_enhance = flag(args.get("autoEnhance", "true"))
    if auto_enhance is None:
        raise InvalidRequest("autoEnhance must be true or false.")
    return LiveRequest(
        prompt=check_prompt(args.get("prompt")),
        aspect_ratio=aspect_ratio,
        auto_enhance=auto_enhance,
        template=check_template(args.get("template", "general")),
    )


def scope_settings(body):
    """The model fields a scope's create or update body sets, validated."""
    refuse_unknown_fields(body, (*SETTINGS_FIELDS, "slug"))
    fields = {}
    if "allowNewGenerations" in body:
        fields["allow_new_generations"] = boolean_field(body["allowNewGenerations"], "allowNewGenerations")
    if "newGenerationsLimit" in body:
        value = body["newGenerationsLimit"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GENERATIONS_LIMIT:
            raise InvalidRequest(f"newGenerationsLimit must be an integer from 0 to {MAX_GENERATIONS_LIMIT}.")
        fields["new_generations_limit"] = value
    if "meta" in body:
        if not isinstance(body["meta"], dict):
            raise InvalidRequest("meta must be a JSON object.")
        meta = json.dumps(body["meta"])
        if len(meta.encode("utf-8")) > MAX_META_BYTES:
            raise InvalidRequest(f"meta may be at most {MAX_META_BYTES} bytes of JSON.")
        fields["meta"] = meta
    return fields


def new_scope(body):
    """`POST /api/v1/live/scopes`: (slug, model fields) of `{slug, allowNewGenerations?, newGenerationsLimit?, meta?}`."""
    if "slug" not in body:
        raise InvalidRequest("slug is required.")
    slug = check_scope_slug(body["slug"])
    return slug, {"meta": "{}", **scope_settings(body)}


def scope_changes(body):
    """`PUT /api/v1/live/scopes/{slug}`: the model fields of `{allowNewGenerations?, newGenerationsLimit?, meta?}`."""
    if "slug" in body:
        raise InvalidRequest("A scope's slug cannot be changed.")
    return scope_settings(body)


def _page_number(text, name, low, high):
    value = whole_number(text)
    if value is None or not low <= value <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}.")
    return value


def scope_page(args):
    """`GET /api/v1/live/scopes`: the ScopePage of its query string."""
    return ScopePage(
        slug=args.get("slug"),
        limit=_page_number(args.get("limit", "20"), "limit", 1, MAX_LIST_LIMIT),
        offset=_page_number(args.get("offset", "0"), "offset", 0, 2**31 - 1),
    )


def regenerate_target(body):
    """`POST .../regenerate`: the one image id to regenerate, None for every image of the scope."""
    refuse_unknown_fields(body, {"imageId"})
    return body.get("imageId")
