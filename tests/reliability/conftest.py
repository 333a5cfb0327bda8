"""Stacks in the production shape for the reliability suite: nginx + gunicorn + MySQL + Redis limits."""

import secrets

import pytest

from tests.conftest import start_stack
from tests.reliability.helpers import DbProbe

REDIS_URI = "redis://127.0.0.1:6379/6"


def start_reliability_stack(stack_root, mysql_databases, database_kind, **env):
    """A stack on a fresh database, with Redis limits under a prefix of its own."""
    env.setdefault("GOODEYE_RATELIMIT_STORAGE_URI", REDIS_URI)
    env.setdefault("GOODEYE_RATELIMIT_KEY_PREFIX", f"test-rel-{secrets.token_hex(6)}")
    return start_stack(stack_root, mysql_databases, database_kind, **env)


@pytest.fixture(scope="session")
def rel_stack(stack_root, mysql_databases, database_kind):
    """nginx (fast path on) + local blobs + MySQL (SQLite only outside CI)."""
    running = start_reliability_stack(stack_root, mysql_databases, database_kind, GOODEYE_THREADS="8")
    yield running
    running.stack.stop()


@pytest.fixture(scope="session")
def rel_stack_s3(stack_root, mysql_databases, database_kind, s3_server):
    """The same behind nginx, with blobs in the session's S3 server (moto)."""
    from tests.conftest import s3_env

    running = start_reliability_stack(stack_root, mysql_databases, database_kind, **s3_env(s3_server))
    yield running
    running.stack.stop()


@pytest.fixture(scope="session")
def rel_db(rel_stack):
    probe = DbProbe(rel_stack.settings)
    yield probe
    probe.close()
