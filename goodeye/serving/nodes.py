"""How a change made through one node reaches every node's copies of public S3 blobs before it answers.

On S3 storage each node keeps copies of public images' blobs on its own disk
(CopyIndex in goodeye/serving/links.py), which nginx serves as it serves local
links, after a decision it may keep for an hour. Another node's change cannot
touch those files, so:

- a change, after its commit, records the tokens it touched under the next
  number of `link_clock` (`link_change`), then waits until every node holding a
  lease has followed the changes up to that number (`announce`). Taking the
  number locks the counter's row until the commit, so numbers commit in order:
  a node that has seen number n has seen every change before it;
- each node's follower (`goodeye admin follow-links`, started beside nginx by
  goodeye/stack.py) polls for numbers above the last it followed every
  POLL_SECONDS, removes the copies they touch, then records the number
  (`serving_node`);
- a follower renews its lease as it polls; one that cannot poll removes every
  copy before its lease runs out, so a change waits for it no longer than that;
- copies are made by the follower alone, from the image's row read after the
  download: a change committed after that read is followed, and the copy
  removed, before the change answers.

Leases are in the database's clock (MySQL's UTC_TIMESTAMP), so nodes' clocks
need not agree; on SQLite one machine runs everything and its clock is the one.
"""

import hashlib
import logging
import shutil
import socket
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from peewee import SQL

from goodeye.db import Prepared, database, is_sqlite, retry_on_deadlock
from goodeye.models import Image, LinkChange, LinkClock, ServingNode, utcnow
from goodeye.serving.links import CopyIndex

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02
LEASE_SECONDS = 3.0
# A follower writes its lease at least this often, and drops every copy this long before its lease runs out.
RENEW_SECONDS = 0.5
MARGIN_SECONDS = 1.0
# Changes older than this are deleted (every node has followed them long before).
KEEP_CHANGES = timedelta(minutes=10)
DOWNLOAD_THREADS = 2

_CHANGES_AFTER = Prepared(
    lambda p: LinkChange.select(LinkChange.seq, LinkChange.token).where(LinkChange.seq > p.seq).order_by(LinkChange.seq)
)


def database_clock(seconds_ahead=0.0):
    """The database's time (UTC), plus some seconds: an SQL expression on MySQL, this machine's time on SQLite."""
    if is_sqlite():
        return utcnow() + timedelta(seconds=seconds_ahead)
    return SQL("(UTC_TIMESTAMP(6) + INTERVAL %s MICROSECOND)", [round(seconds_ahead * 1_000_000)])


def follows_changes(ctx):
    """Whether this deployment's nodes keep copies that changes must reach."""
    return isinstance(ctx.links, CopyIndex)


def announce(ctx, tokens):
    """After a committed change to these images: return once every node with a lease has dropped its copies of them."""
    if not follows_changes(ctx) or not tokens:
        return
    if database.in_transaction():
        # Nodes cannot see the change before the commit: waiting for them here would wait out every lease.
        raise RuntimeError("announce() runs after the change's commit")
    wait_for_nodes(_record_change(tokens))


@retry_on_deadlock
def _record_change(tokens):
    with database.atomic():
        LinkClock.update(last=LinkClock.last + 1).where(LinkClock.id == 1).execute()
        seq = last_change()
        LinkChange.insert_many([{LinkChange.seq: seq, LinkChange.token: token} for token in set(tokens)]).execute()
    return seq


def last_change():
    """The number of the last committed change."""
    return LinkClock.select(LinkClock.last).where(LinkClock.id == 1).scalar()


def wait_for_nodes(seq):
    """Wait until every node with a lease has followed change `seq` (for a node that stopped, until its lease ran out)."""
    started = time.monotonic()
    while True:
        behind = [
            name
            for (name,) in ServingNode.select(ServingNode.name)
            .where(ServingNode.followed_seq < seq, ServingNode.lease_until > database_clock())
            .tuples()
        ]
        if not behind:
            return
        if time.monotonic() - started > LEASE_SECONDS + MARGIN_SECONDS:
            log.warning("nodes %s still hold a lease without following change %s", behind, seq)
            return
        time.sleep(0.002)


def node_name(settings):
    """This node's name: its host and its copies' directory."""
    digest = hashlib.sha256(settings.link_dir.encode()).hexdigest()[:16]
    return f"{socket.gethostname()[:100]}:{digest}"


class Follower:
    """A node's follower: drops the copies changes touch, makes the copies asked for, holds the node's lease."""

    def __init__(self, ctx, name):
        self.ctx = ctx
        self.copies = ctx.links
        self.name = name
        self.max_bytes = ctx.settings.s3_cache_max_bytes
        self.downloads = ThreadPoolExecutor(DOWNLOAD_THREADS, thread_name_prefix="copy")
        self.pending = {}  # token -> future of the downloaded file's path
        self.kept = OrderedDict()  # token -> bytes, oldest copy first
        self.followed_seq = None
        self.renewed_at = None
        self.pruned_at = None
        # The copies may be served until this (monotonic) time; the watchdog drops them all after it.
        self.serve_until = 0.0
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self):
        """Follow until `stopping` is set, then drop the node's copies and its lease."""
        threading.Thread(target=self._watchdog, daemon=True, name="watchdog").start()
        try:
            while not self.stopping.is_set():
                try:
                    with database.connection_context():
                        self.poll()
                except Exception:  # an outage must not end the follower: the watchdog drops the copies
                    log.exception("following changes failed; retrying")
                    self.stopping.wait(RENEW_SECONDS)
                self.stopping.wait(POLL_SECONDS)
        finally:
            self._stop_serving()
            self.downloads.shutdown(wait=False, cancel_futures=True)
            with database.connection_context():
                ServingNode.delete().where(ServingNode.name == self.name).execute()

    def start(self):
        """Start from no copy and the last change committed: the rows say what happened before it."""
        self.followed_seq = last_change()
        self.copies.wipe()
        self._renew(time.monotonic())

    def poll(self):
        """One round: drop the copies of changed images, place finished downloads, start wanted ones, renew the lease."""
        if self.followed_seq is None:
            self.start()
        clock = time.monotonic()
        changes = _CHANGES_AFTER.all(seq=self.followed_seq)
        for _seq, token in changes:
            self.copies.remove(token, signed=False)
            self.kept.pop(token, None)
        self._place_downloads()
        self._start_downloads()
        if changes:
            self.followed_seq = changes[-1][0]
        if changes or clock - self.renewed_at >= RENEW_SECONDS:
            self._renew(clock)
        if self.pruned_at is None or clock - self.pruned_at > 60:
            LinkChange.delete().where(LinkChange.created_at < utcnow() - KEEP_CHANGES).execute()
            self.pruned_at = clock

    def _renew(self, clock):
        values = {ServingNode.followed_seq: self.followed_seq, ServingNode.lease_until: database_clock(LEASE_SECONDS)}
        ServingNode.insert({ServingNode.name: self.name, **values}).on_conflict(
            # SQLite's upsert must name the conflicting key; MySQL's must not.
            conflict_target=[ServingNode.name] if is_sqlite() else None,
            update=values,
        ).execute()
        self.renewed_at = clock
        with self.lock:
            self.serve_until = clock + LEASE_SECONDS - MARGIN_SECONDS

    def _start_downloads(self):
        wanted = [token for token in self.copies.take_wants() if token not in self.pending and not self.copies.has(token)]
        if not wanted:
            return
        for row in _public_rows(wanted):
            self.pending[row.token] = self.downloads.submit(self._download, row.sha256)

    def _download(self, sha256):
        handle, path = self.copies.temporary_file()
        with handle, self.ctx.storage.open(sha256) as stream:
            shutil.copyfileobj(stream, handle, 1024 * 1024)
        return sha256, path

    def _place_downloads(self):
        done = {token: future for token, future in self.pending.items() if future.done()}
        if not done:
            return
        for token in done:
            del self.pending[token]
        downloaded = {}
        for token, future in done.items():
            try:
                downloaded[token] = future.result()
            except Exception:  # the store's outage: the app keeps serving it, and asks again
                log.exception("copying the blob of %s failed", token)
        # Read after the download: a change committed later is dropped by a later poll, which the change waits for.
        current = {row.token: row for row in _public_rows(list(downloaded))}
        for token, (sha256, path) in downloaded.items():
            row = current.get(token)
            with self.lock:
                if row is not None and row.sha256 == sha256 and time.monotonic() < self.serve_until:
                    self.copies.place(row, path)
                    self.kept[token] = row.size_bytes
                    continue
            Path(path).unlink(missing_ok=True)
        self._evict()

    def _evict(self):
        total = sum(self.kept.values())
        while total > self.max_bytes and self.kept:
            token, size = self.kept.popitem(last=False)
            self.copies.remove(token, signed=False)
            total -= size

    def _watchdog(self):
        while not self.stopping.wait(0.1):
            with self.lock:
                stale = time.monotonic() >= self.serve_until
            if stale and self.kept:
                log.warning("no poll within the lease: dropping every copy")
                self._stop_serving()

    def _stop_serving(self):
        with self.lock:
            self.serve_until = 0.0
            self.copies.wipe()
            self.kept.clear()


def _public_rows(tokens):
    """The rows of these tokens' public, unexpired images (what a copy is named after)."""
    now = utcnow()
    return list(
        Image.select(Image.token, Image.sha256, Image.size_bytes, Image.expires_at, Image.updated_at)
        .where(Image.token.in_(tokens), Image.visibility == "public", (Image.expires_at.is_null()) | (Image.expires_at > now))
    )
