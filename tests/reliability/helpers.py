"""What the reliability suite shares: its scale, direct database counts, envelope checks, a client pool."""

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter

from goodeye.db import make_database

# CI runs reduced counts; GOODEYE_RELIABILITY_SCALE=full runs the published ones (README "Reliability").
SCALE = os.environ.get("GOODEYE_RELIABILITY_SCALE", "ci").strip().lower()
if SCALE not in ("ci", "full"):
    raise RuntimeError(f"GOODEYE_RELIABILITY_SCALE must be 'ci' or 'full', not {SCALE!r}")

_COUNTS = {
    "load_requests": {"ci": 1500, "full": 10_000},
    "load_concurrency": {"ci": 32, "full": 64},
    "fuzz_examples": {"ci": 60, "full": 600},
    "concurrent_clients": {"ci": 64, "full": 64},
    "entropy_samples": {"ci": 200, "full": 2000},
}


def count(name):
    """A count of this run's scale."""
    return _COUNTS[name][SCALE]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class DbProbe:
    """Reads a stack's database directly (its own connection, never the app's or the CLI's)."""

    def __init__(self, settings):
        self.db = make_database(settings.database, pool_size=2)

    def rows(self, sql, *params):
        """All rows of a query; `?` marks a parameter on either database."""
        sql = sql.replace("?", self.db.param)
        with self.db.connection_context():
            return list(self.db.execute_sql(sql, params).fetchall())

    def scalar(self, sql, *params):
        return self.rows(sql, *params)[0][0]

    def project_id(self, project_path):
        org, slug = project_path.split("/")
        return self.scalar("SELECT p.id FROM project p JOIN org o ON p.org_id = o.id WHERE o.slug = ? AND p.slug = ?", org, slug)

    def image_count(self, project_path):
        return self.scalar("SELECT COUNT(*) FROM image WHERE project_id = ?", self.project_id(project_path))

    def blob_refs(self):
        """{sha256: refs} of every blob row."""
        return dict(self.rows("SELECT sha256, refs FROM `blob`"))

    def close(self):
        self.db.close_all() if hasattr(self.db, "close_all") else self.db.close()


def is_envelope(response, family="v1"):
    """Whether a response is its family's JSON error envelope."""
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    error = body["error"]
    if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
        return False
    return family == "v1" or body.get("success") is False


def error_code(response):
    """The code of an error envelope (either family)."""
    assert is_envelope(response, "v1"), (response.status_code, response.headers, response.content[:300])
    return response.json()["error"]["code"]


class ClientPool:
    """`size` threads, each with its own keep-alive requests session."""

    def __init__(self, size):
        self.size = size
        self._local = threading.local()
        self._sessions = []
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=size)

    def session(self):
        """This thread's session."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1))
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def map(self, fn, items):
        """fn(session, item) over items on the pool; results in order (exceptions re-raised)."""
        return list(self.executor.map(lambda item: fn(self.session(), item), items))

    def close(self):
        self.executor.shutdown(wait=True)
        for session in self._sessions:
            session.close()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()
