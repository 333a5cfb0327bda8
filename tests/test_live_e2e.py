"""Live URLs, end to end through nginx + gunicorn, on MySQL, with limits in Redis.

Each request that must count against an address of its own connects from a
random loopback address (nginx sets X-Real-IP from it), so per-IP limits never
leak between tests; the stack's limit keys carry a prefix unique to the run.
"""

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from goodeye.models import Image, LiveCacheEntry, utcnow

from tests.live_helpers import (
    api,
    client,
    decoded_size,
    error_code,
    generated_images,
    live_get,
    live_url,
    new_scope_slug,
    random_loopback,
    scope_of,
    start_live_stack,
    unique,
)
from tests.reliability.helpers import DbProbe

LIVE_LIMIT = 3


@pytest.fixture(scope="module")
def live_stack(stack_root, mysql_databases, database_kind):
    running = start_live_stack(stack_root, mysql_databases, database_kind, GOODEYE_LIVE_GENERATION_LIMIT=f"{LIVE_LIMIT}/hour")
    yield running
    running.stack.stop()


@pytest.fixture()
def live_owner(live_stack):
    return live_stack.new_owner()


def blob_count(stack):
    return sum(len(files) for _dir, _sub, files in os.walk(os.path.join(stack.data_dir, "blobs")))


# --- MISS, then HIT --------------------------------------------------------------


def test_first_request_generates_and_later_ones_are_served_from_cache(live_stack, live_owner):
    scope, prompt = new_scope_slug(), unique("mountain landscape")
    first = live_get(live_stack, live_owner.project, scope, prompt, aspectRatio="16:9")
    assert first.status_code == 200, first.text
    assert first.headers["X-Cache-Status"] == "MISS"
    assert first.headers["X-Scope"] == scope
    assert first.headers["X-Image-Id"].startswith("img_")
    assert first.headers["X-Generation-Id"].startswith("gen_")
    assert first.headers["X-RateLimit-Limit"] == str(LIVE_LIMIT)
    assert first.headers["X-RateLimit-Remaining"] == str(LIVE_LIMIT - 1)
    assert int(first.headers["X-RateLimit-Reset"]) > 0
    assert first.headers["Cache-Control"] == "public, max-age=31536000"
    assert first.headers["Content-Type"] in ("image/jpeg", "image/png")
    assert int(first.headers["Content-Length"]) == len(first.content)
    assert decoded_size(first.content) == (1024, 576)

    second = live_get(live_stack, live_owner.project, scope, prompt, aspectRatio="16:9")
    assert second.status_code == 200
    assert second.headers["X-Cache-Status"] == "HIT"
    assert second.headers["X-Scope"] == scope
    assert second.headers["X-Image-Id"] == first.headers["X-Image-Id"]
    assert second.headers["Cache-Control"] == "public, max-age=31536000"
    assert second.content == first.content
    for header in ("X-Generation-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert header not in second.headers

    record = scope_of(live_stack, live_owner, scope)
    assert record["currentGenerations"] == 1 and record["newGenerationsLimit"] == 30
    assert record["allowNewGenerations"] is True and record["lastGeneratedAt"] is not None
    images = generated_images(live_stack, live_owner)
    assert [image["id"] for image in images] == [first.headers["X-Image-Id"]]
    assert images[0]["visibility"] == "public" and images[0]["expires_at"] is None
    assert images[0]["sha256"] == hashlib.sha256(first.content).hexdigest()


def test_hits_answer_conditional_requests(live_stack, live_owner):
    scope, prompt = new_scope_slug(), unique("a lighthouse")
    assert live_get(live_stack, live_owner.project, scope, prompt).status_code == 200
    hit = live_get(live_stack, live_owner.project, scope, prompt)
    assert hit.headers["X-Cache-Status"] == "HIT" and hit.headers.get("ETag")
    with client() as session:
        again = session.get(live_url(live_stack, live_owner.project, scope, prompt), headers={"If-None-Match": hit.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    "variant",
    [
        {"aspectRatio": "9:16"},
        {"autoEnhance": "false"},
        {"template": "illustration"},
        {"scope": "other"},
        {"prompt": "a different prompt"},
    ],
    ids=lambda variant: next(iter(variant)),
)
def test_every_part_of_the_cache_key_makes_a_new_image(live_stack, live_owner, variant):
    scope, prompt = new_scope_slug(), unique("a quiet harbour")
    base = live_get(live_stack, live_owner.project, scope, prompt)
    assert base.headers["X-Cache-Status"] == "MISS"
    params = {key: value for key, value in variant.items() if key not in ("scope", "prompt")}
    other = live_get(
        live_stack,
        live_owner.project,
        f"{scope}-2" if "scope" in variant else scope,
        prompt + " 2" if "prompt" in variant else prompt,
        **params,
    )
    assert other.status_code == 200
    assert other.headers["X-Cache-Status"] == "MISS"
    assert other.headers["X-Image-Id"] != base.headers["X-Image-Id"]


def test_defaults_and_spelled_out_defaults_share_one_key(live_stack, live_owner):
    scope, prompt = new_scope_slug(), unique("a red fox")
    first = live_get(live_stack, live_owner.project, scope, prompt)
    same = live_get(live_stack, live_owner.project, scope, "  " + prompt.replace(" ", "  "), aspectRatio="1:1", autoEnhance="true", template="general")
    assert same.headers["X-Cache-Status"] == "HIT"
    assert same.headers["X-Image-Id"] == first.headers["X-Image-Id"]


def test_the_same_prompt_in_two_projects_is_two_images(live_stack, live_owner):
    other_owner = live_stack.new_owner()
    prompt = unique("a windmill")
    first = live_get(live_stack, live_owner.project, "shared", prompt)
    second = live_get(live_stack, other_owner.project, "shared", prompt)
    assert (first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]) == ("MISS", "MISS")
    assert first.headers["X-Image-Id"] != second.headers["X-Image-Id"]


# --- bad requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope, params, status, code",
    [
        ("bad.scope", {"prompt": "x"}, 400, "SCOPE_INVALID_FORMAT"),
        ("s" * 65, {"prompt": "x"}, 400, "SCOPE_INVALID_FORMAT"),
        ("newline%0A", {"prompt": "x"}, 400, "SCOPE_INVALID_FORMAT"),
        ("ok", {}, 400, "VALIDATION_ERROR"),
        ("ok", {"prompt": "   "}, 400, "VALIDATION_ERROR"),
        ("ok", {"prompt": "x" * 2001}, 400, "VALIDATION_ERROR"),
        ("ok", {"prompt": "x", "aspectRatio": "5:4"}, 400, "VALIDATION_ERROR"),
        ("ok", {"prompt": "x", "autoEnhance": "maybe"}, 400, "VALIDATION_ERROR"),
        ("ok", {"prompt": "x", "template": "baroque"}, 400, "VALIDATION_ERROR"),
    ],
)
def test_bad_live_requests_are_refused_without_generating(live_stack, live_owner, scope, params, status, code):
    with client() as session:
        response = session.get(f"{live_stack.url}/cdn/{live_owner.project}/live/{scope}", params=params)
    assert response.status_code == status
    assert error_code(response) == code
    assert generated_images(live_stack, live_owner) == []


def test_unknown_org_and_project(live_stack, live_owner):
    org = live_owner.project.split("/")[0]
    assert error_code(live_get(live_stack, "no-such-org/proj", "s", "x")) == "ORG_NOT_FOUND"
    missing = live_get(live_stack, f"{org}/no-such-project", "s", "x")
    assert missing.status_code == 404 and error_code(missing) == "PROJECT_NOT_FOUND"


# --- scope rules -------------------------------------------------------------------


def test_unknown_scopes_are_refused_when_the_project_disallows_new_ones(live_stack, live_owner):
    existing, prompt = new_scope_slug(), unique("a forest path")
    cached = live_get(live_stack, live_owner.project, existing, prompt)
    assert cached.status_code == 200
    patched = api(live_stack, live_owner, "PATCH", "/project", json={"allowNewLiveScopes": False})
    assert patched.status_code == 200 and patched.json()["data"]["allowNewLiveScopes"] is False

    refused = live_get(live_stack, live_owner.project, new_scope_slug(), prompt)
    assert refused.status_code == 403 and error_code(refused) == "SCOPE_CREATION_DISABLED"
    assert live_get(live_stack, live_owner.project, existing, prompt).headers["X-Cache-Status"] == "HIT"
    assert live_get(live_stack, live_owner.project, existing, unique("new prompt")).headers["X-Cache-Status"] == "MISS"
    listed = api(live_stack, live_owner, "GET", "/live/scopes").json()["pagination"]["total"]
    assert listed == 1

    assert live_stack.admin("project", "update", live_owner.project, "--live-scopes").exit_code == 0
    assert live_get(live_stack, live_owner.project, new_scope_slug(), prompt).status_code == 200


def test_a_scope_without_new_generations_serves_hits_and_refuses_new_prompts(live_stack, live_owner):
    scope, prompt = new_scope_slug(), unique("a sailing boat")
    first = live_get(live_stack, live_owner.project, scope, prompt)
    assert api(live_stack, live_owner, "PUT", f"/live/scopes/{scope}", json={"allowNewGenerations": False}).status_code == 200
    assert live_get(live_stack, live_owner.project, scope, prompt).headers["X-Image-Id"] == first.headers["X-Image-Id"]
    refused = live_get(live_stack, live_owner.project, scope, unique("another boat"))
    assert refused.status_code == 403 and error_code(refused) == "GENERATION_DISABLED"
    assert scope_of(live_stack, live_owner, scope)["currentGenerations"] == 1


def test_a_scope_at_its_limit_serves_hits_and_refuses_new_prompts_without_spending_the_ip_limit(live_stack, live_owner):
    scope, prompt = new_scope_slug(), unique("a snowy owl")
    created = api(live_stack, live_owner, "POST", "/live/scopes", json={"slug": scope, "newGenerationsLimit": 1})
    assert created.status_code == 201
    with client() as session:
        first = live_get(live_stack, live_owner.project, scope, prompt, session=session)
        assert first.headers["X-RateLimit-Remaining"] == str(LIVE_LIMIT - 1)
        refused = live_get(live_stack, live_owner.project, scope, unique("a barn owl"), session=session)
        assert refused.status_code == 429 and error_code(refused) == "SCOPE_GENERATION_LIMIT_EXCEEDED"
        assert live_get(live_stack, live_owner.project, scope, prompt, session=session).headers["X-Cache-Status"] == "HIT"
        elsewhere = live_get(live_stack, live_owner.project, new_scope_slug(), prompt, session=session)
        assert elsewhere.headers["X-RateLimit-Remaining"] == str(LIVE_LIMIT - 2)
    assert scope_of(live_stack, live_owner, scope)["currentGenerations"] == 1
    assert len(generated_images(live_stack, live_owner)) == 2

    # A higher limit applies to the very next request.
    assert api(live_stack, live_owner, "PUT", f"/live/scopes/{scope}", json={"newGenerationsLimit": 2}).status_code == 200
    assert live_get(live_stack, live_owner.project, scope, unique("a barn owl")).headers["X-Cache-Status"] == "MISS"


# --- the per-IP limit ----------------------------------------------------------------


def test_the_ip_limit_counts_misses_only_per_source_address(live_stack, live_owner):
    scope = new_scope_slug()
    cached = unique("a cached prompt")
    with client() as first_address, client() as second_address:
        miss = live_get(live_stack, live_owner.project, scope, cached, session=first_address)
        assert miss.headers["X-RateLimit-Remaining"] == str(LIVE_LIMIT - 1)
        for _ in range(5):
            assert live_get(live_stack, live_owner.project, scope, cached, session=first_address).headers["X-Cache-Status"] == "HIT"
        for remaining in range(LIVE_LIMIT - 2, -1, -1):
            response = live_get(live_stack, live_owner.project, scope, unique("new"), session=first_address)
            assert response.headers["X-Cache-Status"] == "MISS"
            assert response.headers["X-RateLimit-Remaining"] == str(remaining)

        refused = live_get(live_stack, live_owner.project, scope, unique("one too many"), session=first_address)
        assert refused.status_code == 429 and error_code(refused) == "IP_RATE_LIMIT_EXCEEDED"
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.headers["X-RateLimit-Limit"] == str(LIVE_LIMIT)
        assert refused.headers["X-RateLimit-Remaining"] == "0"

        # HITs are never limited; another address has its own allowance.
        assert live_get(live_stack, live_owner.project, scope, cached, session=first_address).status_code == 200
        other = live_get(live_stack, live_owner.project, scope, unique("other address"), session=second_address)
        assert other.status_code == 200 and other.headers["X-RateLimit-Remaining"] == str(LIVE_LIMIT - 1)

        # Forwarding headers the client sends never move its limit.
        for spoof in ({"X-Forwarded-For": "203.0.113.9"}, {"X-Real-IP": "203.0.113.10"}, {"X-Real-IP": "203.0.113.11", "X-Forwarded-For": "203.0.113.12"}):
            spoofed = first_address.get(live_url(live_stack, live_owner.project, scope, unique("spoofed")), headers=spoof)
            assert spoofed.status_code == 429 and error_code(spoofed) == "IP_RATE_LIMIT_EXCEEDED"
        spoofed_other = second_address.get(
            live_url(live_stack, live_owner.project, scope, unique("spoofed")), headers={"X-Real-IP": first_address.address}
        )
        assert spoofed_other.status_code == 200 and spoofed_other.headers["X-RateLimit-Remaining"] == str(LIVE_LIMIT - 2)

    # Refused requests generated nothing and spent nothing of the scope.
    assert scope_of(live_stack, live_owner, scope)["currentGenerations"] == LIVE_LIMIT + 2
    assert len(generated_images(live_stack, live_owner)) == LIVE_LIMIT + 2


@pytest.fixture(scope="module")
def default_limit_stack(stack_root, mysql_databases, database_kind):
    """The default per-IP live limit (10 an hour)."""
    running = start_live_stack(stack_root, mysql_databases, database_kind)
    yield running
    running.stack.stop()


def test_refused_requests_create_no_scope(default_limit_stack):
    stack, owner = default_limit_stack, default_limit_stack.new_owner()
    address = random_loopback()

    def new_scope(n):
        # One session per thread (a Session is not thread-safe), all from the one client address.
        with client(address) as session:
            return live_get(stack, owner.project, f"new-{n}", unique("p"), session=session).status_code

    with ThreadPoolExecutor(14) as pool:
        statuses = list(pool.map(new_scope, range(14)))
    assert sorted(statuses) == [200] * 10 + [429] * 4
    scopes = api(stack, owner, "GET", "/live/scopes?limit=100").json()["pagination"]["total"]
    assert scopes == 10


# --- concurrency ---------------------------------------------------------------------


def test_concurrent_misses_of_one_key_generate_once(live_stack, live_owner):
    scope, prompt = new_scope_slug(), unique("a crowded market")
    url = live_url(live_stack, live_owner.project, scope, prompt)
    with client() as session:

        def fetch(_):
            return session.get(url)

        with ThreadPoolExecutor(max_workers=16) as pool:
            responses = list(pool.map(fetch, range(16)))
        assert [response.status_code for response in responses] == [200] * 16
        assert sorted(response.headers["X-Cache-Status"] for response in responses) == ["HIT"] * 15 + ["MISS"]
        assert len({response.headers["X-Image-Id"] for response in responses}) == 1
        assert len({response.content for response in responses}) == 1
        # The per-IP limit was spent once.
        after = live_get(live_stack, live_owner.project, scope, unique("next"), session=session)
        assert after.headers["X-RateLimit-Remaining"] == str(LIVE_LIMIT - 2)
    assert scope_of(live_stack, live_owner, scope)["currentGenerations"] == 2
    assert len(generated_images(live_stack, live_owner)) == 2


def test_a_claim_left_by_a_dead_worker_is_taken_over(live_stack, live_owner):
    scope, prompt = new_scope_slug(), unique("an abandoned claim")
    first = live_get(live_stack, live_owner.project, scope, prompt)
    assert first.headers["X-Cache-Status"] == "MISS"
    # What a worker killed mid-generation leaves: the key's row claimed long ago, with no image.
    probe = DbProbe(live_stack.settings)
    try:
        with probe.db.bind_ctx([LiveCacheEntry, Image]):
            claimed = Image.select(Image.pk).where(Image.id == first.headers["X-Image-Id"])
            abandoned = LiveCacheEntry.update(image=None, claimed_at=utcnow() - timedelta(hours=1)).where(
                LiveCacheEntry.image.in_(claimed)
            ).execute()
    finally:
        probe.close()
    assert abandoned == 1
    time.sleep(1.2)  # past nginx's kept decision for the URL

    again = live_get(live_stack, live_owner.project, scope, prompt)
    assert again.status_code == 200 and again.headers["X-Cache-Status"] == "MISS"
    assert again.headers["X-Image-Id"] != first.headers["X-Image-Id"]
    after = live_get(live_stack, live_owner.project, scope, prompt)
    assert after.headers["X-Cache-Status"] == "HIT" and after.headers["X-Image-Id"] == again.headers["X-Image-Id"]


def test_concurrent_new_prompts_never_overrun_the_scope_budget(live_stack, live_owner):
    scope = new_scope_slug()
    assert api(live_stack, live_owner, "POST", "/live/scopes", json={"slug": scope, "newGenerationsLimit": 10}).status_code == 201
    prompts = [unique(f"prompt {index}") for index in range(30)]

    def fetch(prompt):
        return live_get(live_stack, live_owner.project, scope, prompt)

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(fetch, prompts))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 10 + [429] * 20
    assert {error_code(response) for response in responses if response.status_code == 429} == {"SCOPE_GENERATION_LIMIT_EXCEEDED"}
    assert scope_of(live_stack, live_owner, scope)["currentGenerations"] == 10
    assert len(generated_images(live_stack, live_owner)) == 10


# --- a failing generation ----------------------------------------------------------------


@pytest.fixture(scope="module")
def failing_stack(stack_root, mysql_databases, database_kind):
    """Every generated image is larger than the upload limit, so no generation can be stored."""
    running = start_live_stack(stack_root, mysql_databases, database_kind, GOODEYE_MAX_UPLOAD_BYTES=2000)
    yield running
    running.stack.stop()


def test_a_failed_generation_releases_the_key_and_the_budget(failing_stack):
    owner = failing_stack.new_owner()
    scope, prompt = new_scope_slug(), unique("too big to keep")
    for _ in range(2):
        failed = live_get(failing_stack, owner.project, scope, prompt)
        assert failed.status_code == 502 and error_code(failed) == "GENERATION_FAILED"
    record = scope_of(failing_stack, owner, scope)
    assert record["currentGenerations"] == 0 and record["lastGeneratedAt"] is None
    assert generated_images(failing_stack, owner) == []
    assert blob_count(failing_stack) == 0


# --- two stacks, one database, one Redis ---------------------------------------------------


@pytest.fixture(scope="module")
def twin_stacks(stack_root, mysql_databases, database_kind):
    """Two gunicorn+nginx stacks sharing one database, one Redis key space and one blob directory."""
    first = start_live_stack(stack_root, mysql_databases, database_kind, GOODEYE_LIVE_GENERATION_LIMIT="4/hour")
    second = start_live_stack(
        stack_root,
        mysql_databases,
        database_kind,
        database_url=first.settings.database,
        GOODEYE_LIVE_GENERATION_LIMIT="4/hour",
        GOODEYE_RATELIMIT_KEY_PREFIX=first.settings.ratelimit_key_prefix,
    )
    # One blob store, as a deployment of several nodes has (S3, or a shared volume).
    second_blobs = second.settings.blob_dir
    os.rmdir(second_blobs)
    os.symlink(first.settings.blob_dir, second_blobs)
    # ...and, with local blobs, one directory of fast-path links beside them.
    os.makedirs(first.settings.link_dir, exist_ok=True)
    if os.path.isdir(second.settings.link_dir):
        os.rmdir(second.settings.link_dir)
    os.symlink(first.settings.link_dir, second.settings.link_dir)
    yield first, second
    second.stack.stop()
    first.stack.stop()


def test_two_stacks_hold_one_ip_limit(twin_stacks):
    first, second = twin_stacks
    owner = first.new_owner()
    scope = new_scope_slug()
    with client() as session:
        remaining = [
            live_get(stack, owner.project, scope, unique("twin"), session=session).headers["X-RateLimit-Remaining"]
            for stack in (first, second, first, second)
        ]
        assert remaining == ["3", "2", "1", "0"]
        for stack in twin_stacks:
            refused = live_get(stack, owner.project, scope, unique("twin"), session=session)
            assert refused.status_code == 429 and error_code(refused) == "IP_RATE_LIMIT_EXCEEDED"


def test_two_stacks_hold_one_budget_and_generate_a_key_once(twin_stacks):
    first, second = twin_stacks
    owner = first.new_owner()
    scope = new_scope_slug()
    assert api(first, owner, "POST", "/live/scopes", json={"slug": scope, "newGenerationsLimit": 5}).status_code == 201
    prompt = unique("one key, two stacks")

    def fetch(index):
        return live_get(twin_stacks[index % 2], owner.project, scope, prompt)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(fetch, range(8)))
    assert [response.status_code for response in responses] == [200] * 8
    assert sorted(response.headers["X-Cache-Status"] for response in responses) == ["HIT"] * 7 + ["MISS"]
    assert len({response.headers["X-Image-Id"] for response in responses}) == 1

    def fetch_new(index):
        return live_get(twin_stacks[index % 2], owner.project, scope, unique(f"budget {index}"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(fetch_new, range(12)))
    assert sorted(response.status_code for response in responses) == [200] * 4 + [429] * 8
    assert scope_of(second, owner, scope)["currentGenerations"] == 5
    assert len(generated_images(second, owner)) == 5
