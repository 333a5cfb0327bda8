"""Races that must end in one consistent state: identical bytes uploaded at once, a delete racing
an upload of the same bytes, alias moves racing each other, on one stack and across two gunicorn
instances sharing MySQL, Redis and the blob store (S3). Live-URL single flight and scope budgets
across instances are in tests/test_live_e2e.py and tests/test_scopes_e2e.py; the load test checks
single flight under mixed load."""

import io
import random

import pytest
import requests
from PIL import Image

from tests.conftest import s3_env
from tests.reliability.conftest import start_reliability_stack
from tests.reliability.helpers import ClientPool, DbProbe, count, sha256


def _png(seed):
    out = io.BytesIO()
    Image.new("RGB", (20, 20), (seed % 256, seed // 256 % 256, 99)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def twin_stacks(stack_root, mysql_databases, database_kind, s3_server):
    """Two nginx + gunicorn instances on one database, one Redis prefix and one bucket."""
    env = s3_env(s3_server)
    first = start_reliability_stack(stack_root, mysql_databases, database_kind, GOODEYE_THREADS="8", **env)
    second = start_reliability_stack(
        stack_root, mysql_databases, database_kind, database_url=first.settings.database, GOODEYE_THREADS="8",
        GOODEYE_RATELIMIT_KEY_PREFIX=first.settings.ratelimit_key_prefix, **env,
    )
    yield first, second
    second.stack.stop()
    first.stack.stop()


@pytest.fixture(params=["one_stack", "two_instances"])
def stacks(request, rel_stack):
    return [rel_stack] if request.param == "one_stack" else list(request.getfixturevalue("twin_stacks"))


def test_identical_bytes_uploaded_at_once_make_one_blob_with_every_reference(stacks):
    owner = stacks[0].new_owner()
    data = _png(random.randrange(1 << 16))
    clients = count("concurrent_clients")

    def upload(session, n):
        stack = stacks[n % len(stacks)]
        return session.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("same.png", data)})

    with ClientPool(clients) as pool:
        answers = pool.map(upload, range(clients))
    assert [a.status_code for a in answers] == [201] * clients
    records = [a.json() for a in answers]
    assert len({r["id"] for r in records}) == clients and len({r["filename"] for r in records}) == clients
    probe = DbProbe(stacks[0].settings)
    try:
        assert probe.blob_refs()[sha256(data)] == clients
    finally:
        probe.close()
    assert stacks[0].blob_keys().count(sha256(data)) == 1
    for record in records[:5]:
        assert requests.get(record["url"], headers=owner.headers).content == data


def test_deletes_racing_uploads_of_the_same_bytes_leave_no_dangling_image(stacks):
    owner = stacks[0].new_owner()
    data = _png(random.randrange(1 << 16))
    first = [requests.post(f"{stacks[0].url}/v1/images", headers=owner.headers, files={"file": ("d.png", data)}).json()
             for _ in range(16)]

    def race(session, n):
        stack = stacks[n % len(stacks)]
        if n % 2:
            return session.delete(f"{stack.url}/v1/images/{first[n // 2]['id']}", headers=owner.headers).status_code, None
        answer = session.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("d.png", data)})
        return answer.status_code, answer.json()

    with ClientPool(32) as pool:
        results = pool.map(race, range(32))
    assert sorted({status for status, _ in results}) == [201, 204]
    survivors = [record for status, record in results if status == 201]
    # Every surviving image's bytes are there and served, from either instance.
    for n, record in enumerate(survivors):
        served = requests.get(record["url"].replace(stacks[0].url, stacks[n % len(stacks)].url), headers=owner.headers)
        assert served.status_code == 200 and served.content == data
    probe = DbProbe(stacks[0].settings)
    try:
        assert probe.blob_refs()[sha256(data)] == len(survivors)
    finally:
        probe.close()


def test_racing_alias_moves_leave_exactly_one_holder(stacks):
    owner = stacks[0].new_owner()
    images = [requests.post(f"{stacks[0].url}/v1/images", headers=owner.headers, files={"file": (f"{n}.png", _png(n))}).json()
              for n in range(16)]

    def move(session, n):
        stack = stacks[n % len(stacks)]
        image = images[n % len(images)]
        # Updates of other fields race the moves too: none may write a stale alias back.
        change = {"visibility": "private"} if n % 3 == 0 else {"alias": "@hero"}
        return session.patch(f"{stack.url}/v1/images/{image['id']}", headers=owner.headers, json=change).status_code

    with ClientPool(count("concurrent_clients")) as pool:
        statuses = pool.map(move, range(count("concurrent_clients")))
    assert statuses == [200] * len(statuses)
    listing = requests.get(f"{stacks[0].url}/v1/images?limit=100", headers=owner.headers).json()["data"]
    holders = [record["id"] for record in listing if record["alias"] == "@hero"]
    assert len(holders) == 1
    org, project = owner.project.split("/")
    assert requests.patch(f"{stacks[-1].url}/v1/images/{holders[0]}", headers=owner.headers,
                          json={"visibility": "public"}).status_code == 200
    served = requests.get(f"{stacks[-1].url}/cdn/{org}/{project}/img/@hero")
    assert served.status_code == 200 and served.headers["X-Image-Id"] == holders[0]


def test_uploads_racing_for_the_last_places_of_a_quota_stop_at_exactly_the_quota(stacks):
    owner = stacks[0].new_owner()
    quota = 10
    assert stacks[0].admin("project", "update", owner.project, "--max-images", str(quota)).exit_code == 0
    clients = count("concurrent_clients")
    payloads = [_png(random.randrange(1 << 16) * 64 + n) for n in range(clients)]

    def upload(session, n):
        stack = stacks[n % len(stacks)]
        return session.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": (f"{n}.png", payloads[n])})

    with ClientPool(clients) as pool:
        answers = pool.map(upload, range(clients))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * quota + [403] * (clients - quota)
    assert {answer.json()["error"]["code"] for answer in answers if answer.status_code == 403} == {"quota_exceeded"}
    stored = [answer.json() for answer in answers if answer.status_code == 201]
    usage = requests.get(f"{stacks[-1].url}/v1/usage", headers=owner.headers).json()
    assert usage == {"images": quota, "storage_bytes": sum(r["size_bytes"] for r in stored), "max_images": quota,
                     "max_storage_bytes": None}
    probe = DbProbe(stacks[0].settings)
    try:
        assert probe.image_count(owner.project) == quota
        refs = probe.blob_refs()
    finally:
        probe.close()
    # A refused upload leaves no blob row and no bytes behind.
    refused = {sha256(payloads[n]) for n, answer in enumerate(answers) if answer.status_code == 403}
    assert not refused & set(refs)
    assert not refused & set(stacks[0].blob_keys())
