"""Mixed load through nginx on MySQL: uploads, public and private reads, updates, deletes, lists,
live MISSes and HITs, from a pool of clients. Zero 5xx; every 201 is retrievable byte-identical
afterwards; the database holds exactly what the clients were told.

Counts: GOODEYE_RELIABILITY_SCALE=ci (default: 1,500 requests at concurrency 32) or full
(10,000 at 64), see README "Reliability".
"""

import io
import os
import random
import threading
from collections import Counter
from urllib.parse import urlencode

import pytest
from PIL import Image

from tests.reliability.conftest import start_reliability_stack
from tests.reliability.helpers import ClientPool, DbProbe, count

# Fault injection, load, fuzzing and bench smoke: left out of the inner loop (-m "not slow").
pytestmark = pytest.mark.slow

# Weights of the mix; reads dominate, as on a real image host.
MIX = {"upload": 24, "upload_shared": 4, "public_read": 24, "private_read": 14, "update": 10,
       "delete": 8, "list": 6, "live": 10}
SHARED = 3  # uploads of identical bytes, so blobs are shared and ref-counted under load
PROMPTS = 12


def _png(seed):
    rng = random.Random(seed)
    out = io.BytesIO()
    Image.new("RGB", (rng.randrange(8, 48), rng.randrange(8, 48)), tuple(rng.randrange(256) for _ in range(3))).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def load_stack(stack_root, mysql_databases, database_kind):
    running = start_reliability_stack(
        stack_root, mysql_databases, database_kind,
        GOODEYE_WORKERS="2", GOODEYE_THREADS="16", GOODEYE_DATABASE_POOL_SIZE="16",
        GOODEYE_LIVE_GENERATION_LIMIT="100000/hour",
    )
    yield running
    running.stack.stop()


class Ledger:
    """What the clients were told, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.alive = {}  # image id -> (owner, record, bytes)
        self.deleted = {}  # image id -> (owner, record)
        self.free = []  # ids created during the run that no thread is touching
        self.statuses = Counter()
        self.failures = []
        self.live = Counter()

    def add(self, owner, record, data):
        with self.lock:
            self.alive[record["id"]] = (owner, record, data)
            self.free.append(record["id"])

    def take(self, rng):
        """An image created during the run, reserved for this thread; None when there is none."""
        with self.lock:
            if not self.free:
                return None
            return self.free.pop(rng.randrange(len(self.free)))

    def give_back(self, image_id):
        with self.lock:
            self.free.append(image_id)


def test_mixed_load_loses_nothing(load_stack):
    stack = load_stack
    total, concurrency = count("load_requests"), count("load_concurrency")
    owners = [stack.new_owner() for _ in range(4)]
    for owner in owners:
        scope = ClientPool(1).session().post(f"{stack.url}/api/v1/live/scopes", headers=owner.headers, json={"slug": "load"})
        assert scope.status_code == 201
    ledger = Ledger()
    shared = [_png(f"shared-{i}") for i in range(SHARED)]

    # Images that are only read during the run: half public, half private, per owner.
    seeded = {}
    with ClientPool(8) as pool:
        def seed(session, item):
            owner, index = item
            data = _png(f"seed-{owner.project}-{index}")
            visibility = "public" if index % 2 else "private"
            response = session.post(f"{stack.url}/v1/images", headers=owner.headers,
                                    files={"file": ("seed.png", data)}, data={"visibility": visibility})
            assert response.status_code == 201, response.text
            return owner, response.json(), data

        for owner, record, data in pool.map(seed, [(owner, i) for owner in owners for i in range(10)]):
            seeded[record["id"]] = (owner, record, data)
    public = [entry for entry in seeded.values() if entry[1]["visibility"] == "public"]
    private = [entry for entry in seeded.values() if entry[1]["visibility"] == "private"]

    kinds = random.Random(20261121).choices(list(MIX), weights=list(MIX.values()), k=total)

    def one(session, item):
        index, kind = item
        rng = random.Random(index)
        owner = owners[index % len(owners)]
        try:
            response = _run(session, stack, ledger, rng, owner, kind, index, shared, public, private)
        except Exception as exc:  # a dropped connection is a failure to report, not a crash of the pool
            with ledger.lock:
                ledger.failures.append(f"{kind}: {exc!r}")
            return
        if response is not None:
            with ledger.lock:
                ledger.statuses[(kind, response.status_code)] += 1
                if response.status_code >= 500:
                    ledger.failures.append(f"{kind} -> {response.status_code}: {response.text[:200]}")

    with ClientPool(concurrency) as pool:
        pool.map(one, list(enumerate(kinds)))

    print(f"\nload: {total} requests at concurrency {concurrency}: {dict(sorted(ledger.statuses.items()))}")
    assert not ledger.failures, f"{len(ledger.failures)} failures, first: {ledger.failures[:10]}; app log: {_app_warnings(stack)}"
    _verify(stack, owners, ledger, seeded)


def _app_warnings(stack):
    """The app's warning and error lines, which say why a request failed."""
    with open(os.path.join(stack.settings.run_dir, "gunicorn.log"), errors="replace") as log:
        return [line for line in log if "WARNING" in line or "ERROR" in line][-10:]


def _run(session, stack, ledger, rng, owner, kind, index, shared, public, private):
    url = stack.url
    if kind in ("upload", "upload_shared"):
        data = rng.choice(shared) if kind == "upload_shared" else _png(f"load-{index}")
        visibility = rng.choice(["public", "private"])
        response = session.post(f"{url}/v1/images", headers=owner.headers,
                                files={"file": (f"f{index}.png", data)}, data={"visibility": visibility})
        if response.status_code == 201:
            ledger.add(owner, response.json(), data)
        elif response.status_code < 500:
            ledger.failures.append(f"upload refused: {response.status_code} {response.text[:200]}")
        return response
    if kind == "public_read":
        _, record, data = rng.choice(public)
        response = session.get(record["url"])
        if response.status_code < 500 and (response.status_code != 200 or response.content != data):
            ledger.failures.append(f"public read of {record['id']}: {response.status_code}")
        return response
    if kind == "private_read":
        read_owner, record, data = rng.choice(private)
        response = session.get(record["url"], headers=read_owner.headers)
        if response.status_code < 500 and (response.status_code != 200 or response.content != data):
            ledger.failures.append(f"private read of {record['id']}: {response.status_code}")
        return response
    if kind == "list":
        response = session.get(f"{url}/v1/images?limit={rng.randrange(1, 101)}", headers=owner.headers)
        if response.status_code < 500 and response.status_code != 200:
            ledger.failures.append(f"list: {response.status_code}")
        return response
    if kind == "live":
        org, project = owner.project.split("/")
        prompt = f"load prompt {rng.randrange(PROMPTS)}"
        response = session.get(f"{url}/cdn/{org}/{project}/live/load?{urlencode({'prompt': prompt})}")
        if response.status_code == 200:
            with ledger.lock:
                ledger.live[(owner.project, prompt, response.headers["X-Cache-Status"])] += 1
        elif response.status_code < 500:
            ledger.failures.append(f"live: {response.status_code} {response.text[:200]}")
        return response
    image_id = ledger.take(rng)
    if image_id is None:
        return None
    image_owner, record, data = ledger.alive[image_id]
    if kind == "update":
        change = rng.choice([{"visibility": "public"}, {"visibility": "private"}, {"ttl_seconds": 86400},
                             {"permanent": True}, {"alias": f"@a{rng.randrange(5)}"}, {"alias": None}])
        response = session.patch(f"{url}/v1/images/{image_id}", headers=image_owner.headers, json=change)
        if response.status_code == 200:
            with ledger.lock:
                ledger.alive[image_id] = (image_owner, response.json(), data)
        elif response.status_code < 500:
            ledger.failures.append(f"update: {response.status_code} {response.text[:200]}")
        ledger.give_back(image_id)
        return response
    response = session.delete(f"{url}/v1/images/{image_id}", headers=image_owner.headers)
    if response.status_code == 204:
        with ledger.lock:
            ledger.deleted[image_id] = (image_owner, record)
            del ledger.alive[image_id]
    else:
        if response.status_code < 500:
            ledger.failures.append(f"delete: {response.status_code} {response.text[:200]}")
        ledger.give_back(image_id)
    return response


def _verify(stack, owners, ledger, seeded):
    alive = {**seeded, **ledger.alive}
    with ClientPool(16) as pool:
        def check(session, item):
            image_id, (owner, record, data) = item
            served = session.get(record["url"], headers=owner.headers)
            got = session.get(f"{stack.url}/v1/images/{image_id}", headers=owner.headers)
            return image_id, served.status_code == 200 and served.content == data and got.status_code == 200

        def gone(session, item):
            image_id, (owner, record) = item
            return image_id, (session.get(record["url"], headers=owner.headers).status_code,
                              session.get(f"{stack.url}/v1/images/{image_id}", headers=owner.headers).status_code)

        lost = [image_id for image_id, ok in pool.map(check, list(alive.items())) if not ok]
        resurrected = [(i, s) for i, s in pool.map(gone, list(ledger.deleted.items())) if s != (404, 404)]
    assert not lost, f"{len(lost)} images that got 201 are not served back byte-identical: {lost[:10]}"
    assert not resurrected, f"deleted images still answer: {resurrected[:10]}"

    probe = DbProbe(stack.settings)
    try:
        for owner in owners:
            uploaded = sum(1 for o, _, _ in alive.values() if o is owner)
            generated = len({prompt for project, prompt, _ in ledger.live if project == owner.project})
            assert probe.image_count(owner.project) == uploaded + generated, owner.project
        # Single flight: one MISS per live URL, every other request a HIT.
        misses = Counter((project, prompt) for (project, prompt, status), n in ledger.live.items() if status == "MISS" for _ in range(n))
        assert misses and all(n == 1 for n in misses.values()), misses
        # Blobs: each row's refs equals the images that use it, and the store holds exactly those blobs.
        refs = probe.blob_refs()
        used = dict(probe.rows("SELECT sha256, COUNT(*) FROM image GROUP BY sha256"))
        assert refs == used
        assert stack.blob_keys() == sorted(refs)
    finally:
        probe.close()
