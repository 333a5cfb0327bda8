"""Serving tokens: 128 random bits plus a tag that tells forgeries apart without a query."""

import base64
from contextlib import contextmanager

import pytest
from peewee import SqliteDatabase

from goodeye.db import using
from goodeye.migrations import migrate
from goodeye.serving.tokens import TokenSigner


@contextmanager
def fresh_deployment(path):
    """Use a new SQLite file, migrated (each gets its own secret)."""
    db = SqliteDatabase(str(path))
    with using(db), db.connection_context():
        migrate()
        yield db


@pytest.fixture()
def signer(tmp_path):
    with fresh_deployment(tmp_path / "t.sqlite3"):
        yield TokenSigner()


def test_issued_tokens_are_genuine_and_distinct(signer):
    tokens = {signer.new_token() for _ in range(2000)}
    assert len(tokens) == 2000
    assert all(len(token) == 32 and signer.is_genuine(token) for token in tokens)


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    lambda t: ("A" if t[0] != "A" else "B") + t[1:],
    lambda t: t[:31],
    lambda t: t + "A",
    lambda t: "A" * 32,
    lambda t: "!" * 32,
])
def test_altered_or_invented_tokens_are_not_genuine(signer, mangle):
    assert not signer.is_genuine(mangle(signer.new_token()))


def test_random_part_has_128_bits(signer):
    raw = base64.urlsafe_b64decode(signer.new_token())
    assert len(raw) == 24  # 16 random bytes + an 8-byte tag


def test_another_deployments_tokens_are_not_genuine(signer, tmp_path):
    token = signer.new_token()
    with fresh_deployment(tmp_path / "other.sqlite3"):
        assert not TokenSigner().is_genuine(token)
