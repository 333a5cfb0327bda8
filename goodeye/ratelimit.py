"""Per-client rate limits with the `limits` library, over GOODEYE_RATELIMIT_STORAGE_URI.

`memory://` counts per process; use `redis://` wherever more than one process
serves (DESIGN §8).
"""

import math
import time
from dataclasses import dataclass

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from goodeye.errors import ServiceUnavailable


@dataclass(frozen=True)
class LimitState:
    """The outcome of taking (or testing) one hit against a limit."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self):
        """The X-RateLimit-* headers of this state."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


class RateLimiter:
    """Moving-window limits keyed by a namespace and a client identifier."""

    def __init__(self, storage_uri, key_prefix="goodeye"):
        # Storages without a key space (memory://) ignore the prefix.
        self.storage = storage_from_string(storage_uri, key_prefix=key_prefix)
        self.strategy = MovingWindowRateLimiter(self.storage)

    def _state(self, item, allowed, *identifiers):
        reset_at, remaining = self.strategy.get_window_stats(item, *identifiers)
        return LimitState(allowed, item.amount, max(0, remaining), max(0, math.ceil(reset_at - time.time())))

    def hit(self, limit, *identifiers):
        """Take one hit if the limit allows it; the state says whether it did."""
        item = parse(limit)
        try:
            allowed = self.strategy.hit(item, *identifiers)
            return self._state(item, allowed, *identifiers)
        except Exception as exc:  # redis down or unreachable: refuse, never a 500
            raise ServiceUnavailable(f"The rate-limit store is unavailable: {exc.__class__.__name__}.") from None

    def peek(self, limit, *identifiers):
        """The state of a limit without taking a hit."""
        item = parse(limit)
        try:
            return self._state(item, self.strategy.test(item, *identifiers), *identifiers)
        except Exception as exc:
            raise ServiceUnavailable(f"The rate-limit store is unavailable: {exc.__class__.__name__}.") from None
