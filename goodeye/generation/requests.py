"""Generation requests read once at the edge: a `/v1` body (or a live URL's query, or a scope's stored
parameters) becomes a GenerationRequest whose generator is looked up and whose values are checked, so
nothing below checks them again."""

from dataclasses import dataclass

from goodeye.errors import InvalidRequest
from goodeye.generation.base import ImageGenerator, aspect_ratio_size
from goodeye.generation.enhance import check_template, normalise
from goodeye.images.requests import parse_ttl, parse_visibility
from goodeye.images.service import Placement
from goodeye.parsing import boolean_field, refuse_unknown_fields

MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**63 - 1
REQUEST_FIELDS = ("prompt", "n", "aspect_ratio", "seed", "auto_enhance", "template", "visibility", "ttl_seconds")
HOSTING_FIELDS = ("visibility", "ttl_seconds")

# The JSON types of the `/v1` body's fields, as goodeye/openapi.yaml declares them.
GENERATE_JSON_TYPES = {
    "prompt": ("string",),
    "n": ("integer",),
    "aspect_ratio": ("string",),
    "seed": ("integer", "null"),
    "auto_enhance": ("boolean",),
    "template": ("string",),
    "visibility": ("string",),
    "ttl_seconds": ("integer", "null"),
}


@dataclass(frozen=True)
class GenerationRequest:
    """A generation's generator and parameters, checked and in canonical form (whitespace-normalised prompt, template name)."""

    generator: ImageGenerator
    prompt: str
    n: int = 1
    aspect_ratio: str = "1:1"
    seed: int | None = None
    auto_enhance: bool = False
    template: str = "general"

    def params(self):
        """The options kept with the generation row and each of its images."""
        return {
            "n": self.n,
            "aspect_ratio": self.aspect_ratio,
            "seed": self.seed,
            "auto_enhance": self.auto_enhance,
            "template": self.template,
        }


def _check_int(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}.")
    return value


def generation_request(generator, *, prompt, n=1, aspect_ratio="1:1", seed=None, auto_enhance=False, template="general"):
    """The GenerationRequest of these parameters for `generator`, or InvalidRequest naming the first bad one."""
    if not isinstance(prompt, str):
        raise InvalidRequest("prompt is required and must be a string.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"prompt may be at most {MAX_PROMPT_CHARS} characters.")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("prompt is not valid Unicode text.") from None
    prompt = normalise(prompt)
    if not prompt:
        raise InvalidRequest("prompt must not be empty.")
    n = _check_int("n", n, 1, generator.max_n)
    aspect_ratio_size(aspect_ratio)
    if seed is not None:
        seed = _check_int("seed", seed, 0, MAX_SEED)
    boolean_field(auto_enhance, "auto_enhance")
    if not isinstance(template, str):
        raise InvalidRequest("template must be a string.")
    return GenerationRequest(
        generator=generator,
        prompt=prompt,
        n=n,
        aspect_ratio=aspect_ratio,
        seed=seed,
        auto_enhance=auto_enhance,
        template=check_template(template),
    )


def body_request(generator, body):
    """The GenerationRequest of a `/v1` generate body, or InvalidRequest."""
    refuse_unknown_fields(body, REQUEST_FIELDS)
    if "prompt" not in body:
        raise InvalidRequest("prompt is required.")
    return generation_request(
        generator,
        prompt=body["prompt"],
        n=body.get("n", 1),
        aspect_ratio=body.get("aspect_ratio", "1:1"),
        seed=body.get("seed"),
        auto_enhance=body.get("auto_enhance", False),
        template=body.get("template", "general"),
    )


def hosting(visibility="private", ttl_seconds=None):
    """The Placement of generated images: a visibility and an optional TTL, checked."""
    return Placement(visibility=parse_visibility(visibility), ttl_seconds=None if ttl_seconds is None else parse_ttl(ttl_seconds))


def body_hosting(body, *, anonymous):
    """The Placement a `/v1` body asks for its images; None for anonymous callers, who cannot choose."""
    if anonymous:
        if any(field in body for field in HOSTING_FIELDS):
            raise InvalidRequest("Anonymous generations are public with a short TTL; send an API key to choose visibility and ttl_seconds.")
        return None
    return hosting(body.get("visibility", "private"), body.get("ttl_seconds"))
