"""The generators a deployment offers, built once from the settings.

`builtin` is always there; `openai` joins when GOODEYE_OPENAI_BASE_URL is set.
Another adapter plugs in by adding it in `from_settings`. The fetch allowlist
is parsed here too, so a bad entry stops the service at start-up, not at the
first generation.
"""

from goodeye.config import ConfigError
from goodeye.errors import GeneratorNotFound
from goodeye.generation.builtin import BuiltinGenerator
from goodeye.generation.enhance import chat_enhancer_from_settings
from goodeye.generation.fetch import parse_allowlist
from goodeye.generation.openai import OpenAIGenerator


class GeneratorRegistry:
    """Generators by id, in listing order; the chat enhancer (or None) and the parsed fetch allowlist."""

    def __init__(self, generators, enhancer=None, allowlist=()):
        self._generators = {generator.id: generator for generator in generators}
        self.enhancer = enhancer
        self.allowlist = tuple(allowlist)

    @classmethod
    def from_settings(cls, settings):
        """The registry the settings describe."""
        generators = [BuiltinGenerator()]
        if settings.openai_base_url:
            generators.append(
                OpenAIGenerator(
                    settings.openai_base_url,
                    settings.openai_api_key,
                    settings.openai_model,
                    settings.openai_timeout_seconds,
                )
            )
        try:
            allowlist = parse_allowlist(settings.fetch_allowlist)
        except ValueError as exc:
            raise ConfigError(f"GOODEYE_FETCH_ALLOWLIST: {exc}") from None
        return cls(generators, chat_enhancer_from_settings(settings), allowlist)

    def get(self, generator_id):
        """The generator with that id, else GeneratorNotFound."""
        generator = self._generators.get(generator_id) if isinstance(generator_id, str) else None
        if generator is None:
            raise GeneratorNotFound(f"No image generator {str(generator_id)[:64]!r}; GET /v1/image-generators lists them.")
        return generator

    def describe(self):
        """The public listing of every generator."""
        return [generator.describe() for generator in self._generators.values()]
