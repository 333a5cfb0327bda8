"""`database://`: a `limits` storage on the configured database (SQLite or MySQL).

Every process of a node (and every node sharing the database) counts in the
same rows, so a limit of 10 is 10 whichever worker answers, without Redis.
`limits` ships no SQL storage; this one implements its base `Storage` (fixed
windows: `incr`/`get`/`get_expiry`), which `FixedWindowRateLimiter` drives.
A window starts at a key's first hit and lasts the limit's period, as it does
in `limits`' Redis storage.
"""

import logging
import threading
import time

from limits.storage import Storage
from peewee import Case, DatabaseError, InterfaceError

from goodeye.db import database, is_sqlite, retry_on_deadlock
from goodeye.models import RateLimitCounter

log = logging.getLogger(__name__)

# Ended windows are deleted by the hits themselves, at most this often per process.
PURGE_EVERY_SECONDS = 60


class DatabaseStorage(Storage):
    """Fixed-window counters in the `rate_limit_counter` table of the bound database."""

    STORAGE_SCHEME = ["database"]

    def __init__(self, uri=None, wrap_exceptions=False, key_prefix="", **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.key_prefix = key_prefix
        self._purge_lock = threading.Lock()
        self._next_purge = 0.0

    @property
    def base_exceptions(self):
        return (DatabaseError, InterfaceError)

    def _key(self, key):
        return f"{self.key_prefix}:{key}" if self.key_prefix else key

    def incr(self, key, expiry, amount=1):
        """Count `amount` hits in the key's window (a new one when it ended); the window's total."""
        hits = self._incr(self._key(key), expiry, amount)
        self._purge_ended_windows()
        return hits

    @retry_on_deadlock
    def _incr(self, key, expiry, amount):
        now = time.time()
        ended = RateLimitCounter.expires_at <= now
        # One upsert takes the row's write lock (SQLite: the database's) until the
        # transaction ends, so the total read back is this hit's own.
        with database.atomic():
            RateLimitCounter.insert(key=key, hits=amount, expires_at=now + expiry).on_conflict(
                # MySQL names no conflict target: ON DUPLICATE KEY covers the primary key.
                conflict_target=[RateLimitCounter.key] if is_sqlite() else None,
                # MySQL assigns left to right: `hits` must be computed before `expires_at` moves.
                update={
                    RateLimitCounter.hits: Case(None, [(ended, amount)], RateLimitCounter.hits + amount),
                    RateLimitCounter.expires_at: Case(None, [(ended, now + expiry)], RateLimitCounter.expires_at),
                },
            ).execute()
            return RateLimitCounter.select(RateLimitCounter.hits).where(RateLimitCounter.key == key).scalar()

    def _live_row(self, key):
        return (
            RateLimitCounter.select(RateLimitCounter.hits, RateLimitCounter.expires_at)
            .where((RateLimitCounter.key == self._key(key)) & (RateLimitCounter.expires_at > time.time()))
            .first()
        )

    def get(self, key):
        """Hits in the key's current window (0 when none is open)."""
        row = self._live_row(key)
        return row.hits if row else 0

    def get_expiry(self, key):
        """When the key's window ends (now when none is open)."""
        row = self._live_row(key)
        return row.expires_at if row else time.time()

    def check(self):
        """Whether the database answers."""
        try:
            database.execute_sql("SELECT 1")
            return True
        except (DatabaseError, InterfaceError):
            return False

    def reset(self):
        """Forget every window; the number forgotten."""
        return RateLimitCounter.delete().execute()

    def clear(self, key):
        """Forget one key's window."""
        RateLimitCounter.delete().where(RateLimitCounter.key == self._key(key)).execute()

    def _purge_ended_windows(self):
        now = time.time()
        with self._purge_lock:
            if now < self._next_purge:
                return
            self._next_purge = now + PURGE_EVERY_SECONDS
        try:
            retry_on_deadlock(RateLimitCounter.delete().where(RateLimitCounter.expires_at <= now).execute)()
        except (DatabaseError, InterfaceError) as exc:  # housekeeping: the hit itself was counted
            log.warning("could not purge ended rate-limit windows: %s", exc)
