"""The `openai` generator: any OpenAI-compatible Images API.

`POST {base_url}/images/generations` with `{"model", "prompt", "n", "size"}` and
`Authorization: Bearer {api_key}` (omitted when no key is set, for local servers).

Decisions:
- Size: these APIs accept a few fixed sizes, not ratios, so an aspect ratio maps
  to the size of its orientation (`SIZES`): square -> 1024x1024, landscape
  (16:9, 4:3, 3:2, 21:9) -> 1536x1024, portrait -> 1024x1536. Those are the
  sizes gpt-image-1 accepts; pass `sizes=` for a provider that wants others
  (DALL-E 3: 1792x1024 / 1024x1792).
- `seed` is not sent: the OpenAI API has no such parameter and rejects unknown
  ones. `response_format` is not sent either (gpt-image-1 refuses it); both
  answer shapes are handled.
- Each `data[i]` becomes one GeneratedOutput: `b64_json` -> `data=` the decoded
  bytes; `url` (http/https only) -> `url=`; both -> both (bytes to host, URL as
  the fallback). An entry with neither usable field (invalid base64, a `data:`
  or `javascript:` URL, not an object) becomes `GeneratedOutput()`: the slot
  exists but cannot be persisted and has no URL, so the service shows null.
- Failures raise GenerationFailed (502) with a one-line message that carries the
  provider's own message when it gave one: non-2xx, timeouts, connection errors,
  malformed JSON, fewer outputs than asked, or no usable output at all. The API
  key is redacted from anything the provider says; no exception text from the
  HTTP stack, and not the base URL, reaches the message.
- More outputs than asked are cut to `n`.
"""

import base64
import binascii
import json
import logging
import re
import time

import requests
from urllib3.exceptions import ReadTimeoutError

from goodeye.errors import GenerationFailed
from goodeye.generation.base import GeneratedOutput, ImageGenerator, aspect_ratio_size

log = logging.getLogger(__name__)

SIZES = {"square": "1024x1024", "landscape": "1536x1024", "portrait": "1024x1536"}
MAX_RESPONSE_BYTES = 128 * 1024 * 1024
_MESSAGE_LIMIT = 300
_CONNECT_TIMEOUT = 10


def size_for(aspect_ratio, sizes=SIZES):
    """The provider size string for an aspect ratio: the size of its orientation."""
    width, height = aspect_ratio_size(aspect_ratio)
    if width == height:
        return sizes["square"]
    return sizes["landscape"] if width > height else sizes["portrait"]


class OpenAIGenerator(ImageGenerator):
    """Images from an OpenAI-compatible `/images/generations` endpoint."""

    id = "openai"
    name = "OpenAI-compatible image model"
    max_n = 4
    is_ai_model = True

    def __init__(self, base_url, api_key, model, timeout_seconds, *, sizes=None, max_response_bytes=MAX_RESPONSE_BYTES):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or ""
        self.model = model
        self.timeout_seconds = timeout_seconds
        self.sizes = {**SIZES, **(sizes or {})}
        self.max_response_bytes = max_response_bytes
        self.description = f"The {model} model through an OpenAI-compatible Images API."

    def generate(self, prompt, n, aspect_ratio, seed):
        """Ask the provider for `n` images; return exactly `n` GeneratedOutput or raise GenerationFailed."""
        payload = {"model": self.model, "prompt": prompt, "n": n, "size": size_for(aspect_ratio, self.sizes)}
        status, body = self._post("/images/generations", payload)
        if not 200 <= status < 300:
            raise GenerationFailed(f"The image provider answered HTTP {status}: {self._provider_message(body)}")
        try:
            answer = json.loads(body)
        except ValueError:
            raise GenerationFailed("The image provider's answer is not valid JSON.") from None
        items = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise GenerationFailed("The image provider's answer has no `data` list.")
        if len(items) < n:
            raise GenerationFailed(f"Asked the image provider for {n} images; it returned {len(items)}.")
        outputs = [_output(item) for item in items[:n]]
        if not any(o.data or o.url for o in outputs):
            raise GenerationFailed("The image provider returned no usable image.")
        return outputs

    def _post(self, path, payload):
        """POST JSON; return (status, body bytes) read within the time cap, or raise GenerationFailed."""
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        deadline = time.monotonic() + self.timeout_seconds
        try:
            with requests.post(
                self.base_url + path,
                json=payload,
                headers=headers,
                timeout=(min(_CONNECT_TIMEOUT, self.timeout_seconds), self.timeout_seconds),
                stream=True,
            ) as response:
                body = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    body += chunk
                    if len(body) > self.max_response_bytes:
                        raise GenerationFailed("The image provider's answer is larger than allowed.")
                    if time.monotonic() > deadline:
                        raise requests.Timeout()
                return response.status_code, bytes(body)
        except requests.Timeout:
            raise GenerationFailed(f"The image provider did not answer within {self.timeout_seconds} seconds.") from None
        except requests.RequestException as exc:
            # requests reports a read timeout while streaming as a ConnectionError.
            if exc.args and isinstance(exc.args[0], ReadTimeoutError):
                raise GenerationFailed(f"The image provider did not answer within {self.timeout_seconds} seconds.") from None
            log.warning("image provider request failed: %s", self._redact(str(exc)))
            raise GenerationFailed("Could not reach the image provider.") from None

    def _provider_message(self, body):
        """The provider's own error message, sanitised, or a generic one."""
        message = None
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if isinstance(answer, dict):
            error = answer.get("error")
            if isinstance(error, dict):
                message = error.get("message")
            elif isinstance(error, str):
                message = error
            message = message or answer.get("message") or answer.get("detail")
        if not isinstance(message, str) or not message.strip():
            return "no error message given."
        return self._redact(message)

    def _redact(self, text):
        """One line, length-capped, with the API key removed."""
        if self.api_key:
            text = text.replace(self.api_key, "[redacted]")
        text = re.sub(r"\s+", " ", "".join(c if c.isprintable() else " " for c in text)).strip()
        return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _output(item):
    """One data[i] entry as a GeneratedOutput; see the module docstring for the rules."""
    if not isinstance(item, dict):
        return GeneratedOutput()
    data = _decode_b64(item.get("b64_json"))
    url = item.get("url")
    if not (isinstance(url, str) and re.match(r"(?i)https?://[^\s]+\Z", url)):
        url = None
    return GeneratedOutput(data=data, url=url)


def _decode_b64(value):
    if not isinstance(value, str):
        return None
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data or None
