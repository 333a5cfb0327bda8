"""The contract of an image generator adapter."""

import abc
from dataclasses import dataclass

from goodeye.errors import InvalidRequest

# Aspect ratio -> (width, height) of the rendered image; the long side is 1024.
ASPECT_RATIOS = {
    "1:1": (1024, 1024),
    "16:9": (1024, 576),
    "9:16": (576, 1024),
    "4:3": (1024, 768),
    "3:4": (768, 1024),
    "3:2": (1024, 683),
    "2:3": (683, 1024),
    "21:9": (1024, 439),
}


def aspect_ratio_size(aspect_ratio, name="aspect_ratio"):
    """The (width, height) of an aspect ratio; InvalidRequest naming the field `name` and the valid ones if it is unknown."""
    size = ASPECT_RATIOS.get(aspect_ratio) if isinstance(aspect_ratio, str) else None
    if size is None:
        raise InvalidRequest(f"{name} must be one of {', '.join(ASPECT_RATIOS)}.")
    return size


@dataclass(frozen=True)
class GeneratedOutput:
    """One output of a generator: bytes it returned inline, or a provider URL to fetch."""

    data: bytes | None = None
    url: str | None = None


class ImageGenerator(abc.ABC):
    """An adapter that turns a prompt into images."""

    id: str
    name: str
    description: str
    max_n: int = 4
    is_ai_model: bool = True

    def describe(self):
        """The public listing of this generator."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "max_n": self.max_n,
            "is_ai_model": self.is_ai_model,
            "aspect_ratios": list(ASPECT_RATIOS),
        }

    @abc.abstractmethod
    def generate(self, prompt, n, aspect_ratio, seed):
        """Return a list of exactly `n` GeneratedOutput; raise GenerationFailed on provider errors."""
