"""Prompt enhancement, shared by the generation API and live URLs.

Rule-based templates are always available: each wraps the prompt in style
phrases. When a chat model is configured, `ChatEnhancer` asks an
OpenAI-compatible `POST {base}/chat/completions` to rewrite the prompt instead,
and falls back to the template's result on any failure: enhancement never
fails a generation.
"""

import logging
import re

import requests

from goodeye.errors import InvalidRequest

log = logging.getLogger(__name__)

# name -> (lead phrase, style phrases); the lead goes before the prompt, the styles after it.
TEMPLATES = {
    "general": ("", ("highly detailed", "balanced composition", "natural lighting", "high quality")),
    "photorealistic": (
        "a photorealistic photograph of",
        ("shot on a 35mm lens", "natural light", "sharp focus", "realistic textures", "high dynamic range"),
    ),
    "illustration": ("a digital illustration of", ("clean linework", "vibrant colors", "painterly shading", "storybook style")),
    "minimalist": (
        "a minimalist composition of",
        ("simple shapes", "limited color palette", "generous negative space", "clean background"),
    ),
    "sticker": ("a die-cut sticker of", ("bold outlines", "flat colors", "thick white border", "isolated on a plain background")),
    "product": ("a professional product photo of", ("studio lighting", "seamless backdrop", "soft shadows", "commercial photography")),
    "comic": ("a comic book panel of", ("bold ink lines", "halftone shading", "dynamic composition", "vivid colors")),
}

TEMPLATE_NAMES = tuple(TEMPLATES)

# A chat answer longer than this is not a prompt; the template's result is used instead.
MAX_ENHANCED_CHARS = 2000


def normalise(prompt):
    """The prompt with runs of whitespace collapsed and the ends trimmed."""
    return re.sub(r"\s+", " ", prompt or "").strip()


def check_template(template):
    """The canonical name of a template; InvalidRequest naming the valid ones if it is unknown."""
    name = (template or "").strip().lower()
    if name not in TEMPLATES:
        raise InvalidRequest(f"Unknown template {template!r}; valid templates: {', '.join(TEMPLATE_NAMES)}.")
    return name


def apply_template(prompt, template="general"):
    """The rule-based enhancement: the template's phrases around the prompt, without repeating any it already has."""
    return _templated(prompt, check_template(template))


def _templated(prompt, name):
    text = normalise(prompt).rstrip(" .,;:")
    lead, styles = TEMPLATES[name]
    lowered = text.lower()
    if lead and not lowered.startswith(lead.lower()):
        # "a photo of The Eiffel Tower" keeps the prompt's own capitals.
        text = f"{lead} {text}"
        text = text[0].upper() + text[1:]
    extra = [style for style in styles if style.lower() not in lowered]
    return ", ".join([text] + extra) if text else ""


def enhance_prompt(prompt, template="general", auto_enhance=True, chat=None):
    """The prompt a generator receives: unchanged (whitespace-normalised) or enhanced by template or chat model."""
    name = check_template(template)
    return enhance_checked(prompt, name, chat) if auto_enhance else normalise(prompt)


def enhance_checked(prompt, template, chat=None):
    """The enhanced prompt, by chat model or template, for a template name check_template already gave."""
    text = normalise(prompt)
    if not text:
        return text
    fallback = _templated(text, template)
    if chat is None:
        return fallback
    return chat.rewrite(text, template, fallback)


class ChatEnhancer:
    """Rewrites prompts with an OpenAI-compatible chat model; never raises, falls back to the template."""

    def __init__(self, base_url, api_key, model, timeout=10.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.model = model
        self.timeout = timeout

    def enhance(self, prompt, template="general", fallback=None):
        """The model's rewrite of `prompt` in the template's style, or `fallback` (default: the template's result)."""
        name = check_template(template)
        return self.rewrite(prompt, name, _templated(prompt, name) if fallback is None else fallback)

    def rewrite(self, prompt, name, fallback):
        """The model's rewrite of `prompt` in the style of template `name` (already checked), or `fallback`."""
        try:
            return self._ask(normalise(prompt), name)
        except Exception as exc:  # noqa: BLE001 - enhancement must never fail a generation
            log.warning("prompt enhancement by chat model %s failed, using the %s template: %s", self.model, name, exc)
            return fallback

    def _ask(self, prompt, template):
        lead, styles = TEMPLATES[template]
        style = ", ".join(([lead] if lead else []) + list(styles))
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {
            "model": self.model,
            "temperature": 0.7,
            "messages": [
                {
                    "role": "system",
                    "content": (
                        "You rewrite prompts for an image generator. Keep the subject and every detail the user gave, "
                        f"add concrete visual detail in this style: {style}. "
                        "Answer with the rewritten prompt only: one paragraph, no quotes, no preamble."
                    ),
                },
                {"role": "user", "content": prompt},
            ],
        }
        response = requests.post(f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=self.timeout)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        content = response.json()["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise ValueError("the answer has no text content")
        text = normalise(content).strip("\"'“”")
        text = normalise(text)
        if not text:
            raise ValueError("the answer is empty")
        if len(text) > MAX_ENHANCED_CHARS:
            raise ValueError(f"the answer is {len(text)} characters long")
        return text


def chat_enhancer_from_settings(settings):
    """A ChatEnhancer when a chat model and an OpenAI-compatible base URL are configured, else None."""
    if not (settings.openai_chat_model and settings.openai_base_url):
        return None
    # Enhancement sits in front of every generation (and every live-URL MISS):
    # it gets a shorter leash than the image call itself.
    timeout = min(settings.openai_timeout_seconds, 15)
    return ChatEnhancer(settings.openai_base_url, settings.openai_api_key, settings.openai_chat_model, timeout)
