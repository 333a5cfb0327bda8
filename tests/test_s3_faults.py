"""The S3 endpoint goes away mid-run: uploads and serving answer 503
`service_unavailable` JSON, nothing is half-written, and Goodeye recovers by itself
when the endpoint comes back on the same port."""

import base64
import hashlib
import os
import secrets

import pytest
import requests

from goodeye.db import make_database
from goodeye.models import Blob, Image
from tests import factories
from tests.conftest import start_stack
from tests.s3_server import CREDENTIALS, S3Server
from tests.test_images_e2e import error_code, upload, uploaded

# Fault injection, load, fuzzing and bench smoke: left out of the inner loop (-m "not slow").
pytestmark = pytest.mark.slow

# A hang guard, not a timing assertion: an outage must not hold a request.
GUARD = 15


@pytest.fixture(scope="module")
def outage_server():
    """An S3 endpoint of this module's own, so stopping it leaves the other stacks alone."""
    os.environ.update(CREDENTIALS)
    server = S3Server().start()
    yield server
    if server.running:
        server.stop()


@pytest.fixture(scope="module", params=["nginx", "off"], ids=["nginx-s3", "off-s3"])
def outage_stack(request, outage_server, stack_root, mysql_databases, database_kind):
    env = outage_server.env(outage_server.create_bucket(f"outage-{secrets.token_hex(6)}"))
    running = start_stack(stack_root, mysql_databases, database_kind, GOODEYE_ACCEL=request.param, **env)
    yield running
    running.stack.stop()


def database_state(stack):
    """Every image id and every blob row (sha256, refs), read straight from the database."""
    db = make_database(stack.settings.database)
    try:
        with db.bind_ctx([Image, Blob]):
            images = sorted(row[0] for row in Image.select(Image.id).tuples())
            blobs = sorted(Blob.select(Blob.sha256, Blob.refs).tuples())
    finally:
        db.close()
    return images, blobs


def assert_unavailable(response):
    assert response.status_code == 503, response.text
    assert error_code(response) == "service_unavailable"


def test_outage_answers_503_writes_nothing_and_recovers(outage_stack, outage_server):
    stack = outage_stack
    http = requests.Session()
    owner = stack.new_owner()
    seen_bytes = factories.png()
    seen = uploaded(stack, owner, seen_bytes, visibility="public")
    assert http.get(seen["url"], timeout=GUARD).content == seen_bytes
    unseen = uploaded(stack, owner, factories.png(), visibility="public")
    before = database_state(stack)

    outage_server.stop()
    try:
        assert_unavailable(upload(stack, owner, factories.png()))
        assert_unavailable(upload(stack, owner, seen_bytes))  # known bytes: its blob's refs must not move
        assert_unavailable(http.post(
            f"{stack.url}/v1/images", headers=owner.headers, timeout=GUARD,
            json={"data": base64.b64encode(factories.webp()).decode()},
        ))
        assert_unavailable(http.get(unseen["url"], timeout=GUARD))
        cached = http.get(seen["url"], timeout=GUARD)
        if stack.settings.accel == "nginx":
            assert cached.status_code == 200 and cached.content == seen_bytes  # nginx's disk cache
        else:
            assert_unavailable(cached)
        assert_unavailable(http.get(f"{stack.url}/readyz", timeout=GUARD))
        listed = http.get(f"{stack.url}/v1/images", headers=owner.headers, timeout=GUARD)
        assert [r["id"] for r in listed.json()["data"]] == [unseen["id"], seen["id"]]
        sweep = stack.admin("sweep", "--json")
        assert sweep.exit_code != 0 and "service_unavailable" in sweep.stderr
        assert database_state(stack) == before
    finally:
        outage_server.start()

    # Back on the same port: no restart of Goodeye.
    assert http.get(f"{stack.url}/readyz", timeout=GUARD).status_code == 200
    assert hashlib.sha256(http.get(unseen["url"], timeout=GUARD).content).hexdigest() == unseen["sha256"]
    after = uploaded(stack, owner, factories.png(), visibility="public")
    assert hashlib.sha256(http.get(after["url"], timeout=GUARD).content).hexdigest() == after["sha256"]
    images, blobs = database_state(stack)
    assert images == sorted(before[0] + [after["id"]])
    # No lost and no orphaned blob: the bucket holds exactly the referenced ones.
    assert stack.blob_keys() == sorted(sha256 for sha256, _refs in blobs)
