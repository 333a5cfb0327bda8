"""Per-client rate limits with the `limits` library, over GOODEYE_RATELIMIT_STORAGE_URI.

`database://` (the default) counts in the configured database, `redis://` in
Redis: both hold across every process and node. `memory://` counts per
process, so it is refused wherever more than one process serves.
"""

import ipaddress
import math
import time
from dataclasses import dataclass

from limits import parse
from limits.storage import MovingWindowSupport, storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from goodeye.errors import ServiceUnavailable
from goodeye.ratelimit_storage import DatabaseStorage  # importing it registers database:// with `limits`


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


def client_key(address):
    """The identity a limit counts for a client address: an IPv6 address counts as its /64.

    One IPv6 subscriber is routinely given a whole /64 and may pick any address in
    it, so counting single addresses would give one client 2**64 allowances.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


class RateLimiter:
    """Limits keyed by a namespace and a client identifier.

    The last identifier is the client's address, counted by `client_key`.

    Moving windows where the storage keeps each hit's time (redis://, memory://);
    fixed windows on the database, which keeps one counter per key.
    """

    def __init__(self, storage_uri, key_prefix="goodeye"):
        # Storages without a key space (memory://) ignore the prefix.
        self.storage = storage_from_string(storage_uri, key_prefix=key_prefix)
        strategy = MovingWindowRateLimiter if isinstance(self.storage, MovingWindowSupport) else FixedWindowRateLimiter
        self.strategy = strategy(self.storage)

    @property
    def counts_in_database(self):
        """Whether hits are rows of the bound database, undone with the caller's transaction when it rolls back."""
        return isinstance(self.storage, DatabaseStorage)

    def _state(self, item, allowed, *identifiers):
        reset_at, remaining = self.strategy.get_window_stats(item, *identifiers)
        return LimitState(allowed, item.amount, max(0, remaining), max(0, math.ceil(reset_at - time.time())))

    def hit(self, limit, *identifiers):
        """Take one hit if the limit allows it; the state says whether it did."""
        item = parse(limit)
        identifiers = _keyed(identifiers)
        try:
            if isinstance(self.strategy, FixedWindowRateLimiter):
                return self._fixed_window_hit(item, *identifiers)
            allowed = self.strategy.hit(item, *identifiers)
            return self._state(item, allowed, *identifiers)
        except Exception as exc:  # redis down or unreachable: refuse, never a 500
            raise ServiceUnavailable(f"The rate-limit store is unavailable: {exc.__class__.__name__}.") from None

    def _fixed_window_hit(self, item, *identifiers):
        # FixedWindowRateLimiter.hit is this incr compared with the limit, but it keeps the
        # count to itself: reading it again afterwards could see concurrent hits too, and
        # two answers would claim the same X-RateLimit-Remaining.
        key = item.key_for(*identifiers)
        hits = self.storage.incr(key, item.get_expiry())
        reset_seconds = math.ceil(self.storage.get_expiry(key) - time.time())
        return LimitState(hits <= item.amount, item.amount, max(0, item.amount - hits), max(0, reset_seconds))

    def peek(self, limit, *identifiers):
        """The state of a limit without taking a hit."""
        item = parse(limit)
        identifiers = _keyed(identifiers)
        try:
            return self._state(item, self.strategy.test(item, *identifiers), *identifiers)
        except Exception as exc:
            raise ServiceUnavailable(f"The rate-limit store is unavailable: {exc.__class__.__name__}.") from None


def _keyed(identifiers):
    return (*identifiers[:-1], client_key(identifiers[-1]))
