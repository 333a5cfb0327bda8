"""Image generation and automatic hosting, end to end through nginx + gunicorn.

One stack for the module, with the `openai` generator pointed at a real fake
provider (tests/fake_openai.py) that is on the fetch allowlist, a small upload
limit (so the provider's oversized image is refused), and anonymous limits in
Redis. Anonymous requests each come from their own random loopback address
(nginx sets X-Real-IP from it), so per-IP limits never leak between tests or runs.
"""

import hashlib
import json
import secrets
from datetime import datetime, timedelta, timezone

import pytest
import requests

from goodeye.db import make_database
from goodeye.models import Generation
from tests.conftest import start_stack
from tests.fake_openai import FAILING_MESSAGE, FakeOpenAI
from tests.live_helpers import SourceAddressAdapter, random_loopback

MAX_UPLOAD_BYTES = 400_000
ANONYMOUS_TTL = 600
ANONYMOUS_LIMIT = 3
PROMPT = "a red fox in the snowy mountains at sunset"


class SteerableFake(FakeOpenAI):
    """A FakeOpenAI whose answers can point at another server's files (`files_origin`)."""

    files_origin = None

    def url(self, path):
        return f"{self.files_origin or self.origin}{path}"


@pytest.fixture(scope="module")
def fake():
    with SteerableFake(slow_seconds=10, oversized_bytes=2 * MAX_UPLOAD_BYTES) as server:
        yield server


@pytest.fixture(scope="module")
def elsewhere():
    """A second provider-like server that is not on the allowlist."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def gen_stack(fake, stack_root, mysql_databases, database_kind):
    running = start_stack(
        stack_root,
        mysql_databases,
        database_kind,
        GOODEYE_OPENAI_BASE_URL=fake.base_url,
        GOODEYE_OPENAI_API_KEY=fake.api_key,
        GOODEYE_OPENAI_MODEL="fake-image-model",
        GOODEYE_OPENAI_TIMEOUT_SECONDS=2,
        GOODEYE_FETCH_ALLOWLIST=fake.allowlist_entry,
        GOODEYE_MAX_UPLOAD_BYTES=MAX_UPLOAD_BYTES,
        GOODEYE_ANONYMOUS_TTL_SECONDS=ANONYMOUS_TTL,
        GOODEYE_RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0",
        # A window length unique to this run: counters left in Redis by earlier runs never apply.
        GOODEYE_ANONYMOUS_GENERATION_LIMIT=f"{ANONYMOUS_LIMIT} per {secrets.randbelow(80_000) + 3600} second",
    )
    yield running
    running.stack.stop()


@pytest.fixture(autouse=True)
def provider_mode(fake):
    fake.mode = "url"
    fake.files_origin = None
    yield


@pytest.fixture()
def gen_owner(gen_stack):
    return gen_stack.new_owner()


@pytest.fixture()
def anonymous():
    """A session with no credentials from its own loopback address (`.address`)."""
    with requests.Session() as session:
        session.address = random_loopback()
        session.mount("http://", SourceAddressAdapter(session.address))
        yield session


def generate(stack, body, headers=None, generator="builtin", session=None):
    return (session or requests).post(f"{stack.url}/v1/image-generators/{generator}/generate", json=body, headers=headers)


def generated(stack, body, headers=None, generator="builtin", session=None):
    response = generate(stack, body, headers, generator, session)
    assert response.status_code == 201, response.text
    return response.json()


def error_code(response):
    return response.json()["error"]["code"]


def images_of(stack, owner):
    response = requests.get(f"{stack.url}/v1/images?limit=100", headers=owner.headers)
    assert response.status_code == 200
    return response.json()["data"]


def generation_count(stack):
    """How many generation rows the stack's database holds."""
    db = make_database(stack.settings.database)
    try:
        with db.bind_ctx([Generation]):
            return Generation.select().count()
    finally:
        db.close()


def generation_row(stack, generation_id):
    """The generation's row, read straight from the stack's database."""
    db = make_database(stack.settings.database)
    try:
        with db.bind_ctx([Generation]):
            return Generation.get(Generation.id == generation_id)
    finally:
        db.close()


def last_generation(stack):
    db = make_database(stack.settings.database)
    try:
        with db.bind_ctx([Generation]):
            return Generation.select().order_by(Generation.pk.desc()).first()
    finally:
        db.close()


def parse_time(value):
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def served(stack, url, headers=None, session=None):
    assert url.startswith(stack.url + "/v1/i/")
    return (session or requests).get(url, headers=headers)


# --- listing ------------------------------------------------------------------


def test_listing_offers_builtin_and_openai_to_anyone(gen_stack, gen_owner, anonymous):
    for headers in (None, gen_owner.headers):
        response = anonymous.get(f"{gen_stack.url}/v1/image-generators", headers=headers)
        assert response.status_code == 200
        listing = {g["id"]: g for g in response.json()["data"]}
        assert set(listing) == {"builtin", "openai"}
        assert listing["builtin"]["is_ai_model"] is False and "not an AI model" in listing["builtin"]["description"]
        assert listing["openai"]["is_ai_model"] is True and listing["openai"]["max_n"] >= 1
        assert "21:9" in listing["builtin"]["aspect_ratios"]


def test_listing_refuses_a_wrong_key(gen_stack, http):
    response = http.get(f"{gen_stack.url}/v1/image-generators", headers={"Authorization": "Bearer good_live_" + "x" * 40})
    assert response.status_code == 401 and error_code(response) == "invalid_api_key"


def test_only_builtin_without_an_openai_base_url(stack, http):
    response = http.get(f"{stack.url}/v1/image-generators")
    assert [g["id"] for g in response.json()["data"]] == ["builtin"]
    response = http.post(f"{stack.url}/v1/image-generators/openai/generate", json={"prompt": "x"})
    assert response.status_code == 404 and error_code(response) == "generator_not_found"


# --- builtin --------------------------------------------------------------------


def test_builtin_authenticated_is_private_permanent_and_served(gen_stack, gen_owner, http):
    body = generated(gen_stack, {"prompt": PROMPT, "n": 2, "aspect_ratio": "16:9", "seed": 42}, gen_owner.headers)
    assert body["generation_id"].startswith("gen_") and body["generator"] == "builtin"
    assert body["prompt"] == PROMPT and body["enhanced_prompt"] is None
    assert len(body["image_urls"]) == len(body["hosted_images"]) == 2
    for index, (url, hosted) in enumerate(zip(body["image_urls"], body["hosted_images"])):
        assert hosted["visibility"] == "private" and hosted["expires_at"] is None
        # Bytes that came back inline have no provider URL: image_urls holds the hosted one.
        assert url == hosted["url"]
        record = requests.get(f"{gen_stack.url}/v1/images/{hosted['id']}", headers=gen_owner.headers).json()
        assert record["source"] == "generated" and (record["width"], record["height"]) == (1024, 576)
        assert record["generation"]["generation_id"] == body["generation_id"]
        assert record["generation"]["seed"] == 42 and record["generation"]["index"] == index
        assert record["generation"]["prompt"] == PROMPT and record["generation"]["aspect_ratio"] == "16:9"
        image = served(gen_stack, url, gen_owner.headers)
        assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"
        assert hashlib.sha256(image.content).hexdigest() == record["sha256"]
        assert image.headers["Cache-Control"] == "private, no-store"
        anonymous = served(gen_stack, url, session=http)
        assert anonymous.status_code == 401 and error_code(anonymous) == "auth_required"
    assert {i["id"] for i in images_of(gen_stack, gen_owner)} == {h["id"] for h in body["hosted_images"]}
    row = generation_row(gen_stack, body["generation_id"])
    assert (row.status, row.error, row.generator, row.prompt) == ("succeeded", None, "builtin", PROMPT)
    assert json.loads(row.params)["seed"] == 42 and row.duration_ms >= 0


def test_builtin_anonymous_is_public_with_the_anonymous_ttl(gen_stack, gen_owner, anonymous):
    before = datetime.now(timezone.utc)
    body = generated(gen_stack, {"prompt": "neon city at night"}, session=anonymous)
    after = datetime.now(timezone.utc)
    [hosted] = body["hosted_images"]
    assert hosted["visibility"] == "public"
    expires = parse_time(hosted["expires_at"])
    assert before + timedelta(seconds=ANONYMOUS_TTL - 1) <= expires <= after + timedelta(seconds=ANONYMOUS_TTL + 1)
    image = served(gen_stack, hosted["url"], session=anonymous)
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"
    max_age = int(image.headers["Cache-Control"].split("max-age=")[1])
    assert image.headers["Cache-Control"].startswith("public") and 0 < max_age <= ANONYMOUS_TTL
    # Owned by the system project, not by anyone who has a key.
    assert hosted["id"] not in {i["id"] for i in images_of(gen_stack, gen_owner)}
    row = generation_row(gen_stack, body["generation_id"])
    assert row.client_ip == anonymous.address


def test_anonymous_generation_is_rate_limited_per_client_ip(gen_stack, anonymous):
    # Refused requests do not count.
    for bad in ({"prompt": ""}, {"prompt": "x", "n": 99}):
        assert generate(gen_stack, bad, session=anonymous).status_code == 400
    for _ in range(ANONYMOUS_LIMIT):
        generated(gen_stack, {"prompt": "hills", "seed": 1}, session=anonymous)
    refused = generate(gen_stack, {"prompt": "hills", "seed": 1}, session=anonymous)
    assert refused.status_code == 429 and error_code(refused) == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    with requests.Session() as neighbour:
        neighbour.mount("http://", SourceAddressAdapter(random_loopback()))
        generated(gen_stack, {"prompt": "hills", "seed": 1}, session=neighbour)


def test_authenticated_generation_is_not_anonymously_limited(gen_stack, gen_owner):
    for _ in range(ANONYMOUS_LIMIT + 1):
        generated(gen_stack, {"prompt": "orbs", "seed": 3}, gen_owner.headers)


def test_a_wrong_key_is_refused_never_anonymous(gen_stack, fake, http):
    calls = len(fake.generation_requests)
    for header in ("Bearer good_live_" + "A" * 40, "Bearer nonsense", "Basic abc"):
        response = generate(gen_stack, {"prompt": PROMPT}, {"Authorization": header}, "openai", http)
        assert response.status_code == 401 and error_code(response) == "invalid_api_key"
    assert len(fake.generation_requests) == calls


def test_same_seed_gives_the_same_image_and_another_seed_another(gen_stack, gen_owner):
    def sha(seed):
        body = generated(gen_stack, {"prompt": "desert dunes", "seed": seed, "aspect_ratio": "3:2"}, gen_owner.headers)
        record = requests.get(f"{gen_stack.url}/v1/images/{body['hosted_images'][0]['id']}", headers=gen_owner.headers)
        return record.json()["sha256"]

    assert sha(7) == sha(7)
    assert sha(8) != sha(7)


def test_auto_enhance_sends_and_records_the_enhanced_prompt(gen_stack, gen_owner, fake):
    body = generated(
        gen_stack, {"prompt": "a  teapot ", "auto_enhance": True, "template": "product"}, gen_owner.headers, "openai"
    )
    assert body["prompt"] == "a teapot"
    assert body["enhanced_prompt"].startswith("A professional product photo of a teapot")
    assert fake.generation_requests[-1].json["prompt"] == body["enhanced_prompt"]
    row = generation_row(gen_stack, body["generation_id"])
    assert row.enhanced_prompt == body["enhanced_prompt"] and json.loads(row.params)["template"] == "product"


# --- openai ----------------------------------------------------------------------


def test_openai_url_answers_are_fetched_and_hosted(gen_stack, gen_owner, fake):
    body = generated(gen_stack, {"prompt": PROMPT, "n": 2}, gen_owner.headers, "openai")
    assert body["generator"] == "openai"
    for index, (url, hosted) in enumerate(zip(body["image_urls"], body["hosted_images"])):
        # The provider's URL stays in image_urls; the hosted copy is ours.
        assert url.startswith(fake.url(f"/files/img-{index}.png"))
        assert hosted["visibility"] == "private" and hosted["expires_at"] is None
        image = served(gen_stack, hosted["url"], gen_owner.headers)
        assert image.status_code == 200 and image.content == fake.image_bytes(index)
        assert image.headers["Content-Type"] == "image/png"
    request = fake.generation_requests[-1].json
    assert request == {"model": "fake-image-model", "prompt": PROMPT, "n": 2, "size": "1024x1024"}


def test_openai_b64_json_answers_are_hosted(gen_stack, gen_owner, fake):
    fake.mode = "b64_json"
    body = generated(gen_stack, {"prompt": PROMPT, "n": 2}, gen_owner.headers, "openai")
    for index, (url, hosted) in enumerate(zip(body["image_urls"], body["hosted_images"])):
        assert url == hosted["url"]
        assert served(gen_stack, url, gen_owner.headers).content == fake.image_bytes(index)


@pytest.mark.parametrize("mode, message", [("slow", "did not answer within 2 seconds"), ("failing", FAILING_MESSAGE)])
def test_provider_failure_is_502_with_the_providers_message_and_no_image(gen_stack, gen_owner, fake, mode, message):
    fake.mode = mode
    response = generate(gen_stack, {"prompt": PROMPT, "n": 2}, gen_owner.headers, "openai")
    assert response.status_code == 502 and error_code(response) == "generation_failed"
    assert message in response.json()["error"]["message"]
    assert fake.api_key not in response.text and "Traceback" not in response.text
    assert images_of(gen_stack, gen_owner) == []
    row = last_generation(gen_stack)
    assert row.status == "failed" and message in row.error and row.generator == "openai"


@pytest.mark.parametrize("mode", ["redirect_private", "svg", "oversized"])
def test_outputs_that_cannot_be_hosted_are_null_with_the_provider_url(gen_stack, gen_owner, fake, mode):
    fake.mode = mode
    body = generated(gen_stack, {"prompt": PROMPT, "n": 2}, gen_owner.headers, "openai")
    assert body["hosted_images"] == [None, None]
    assert all(url.startswith(fake.origin + "/") for url in body["image_urls"])
    assert images_of(gen_stack, gen_owner) == []
    row = generation_row(gen_stack, body["generation_id"])
    assert row.status == "partial" and row.error.startswith("output 0: ")


def test_a_redirect_to_a_private_host_is_never_followed(gen_stack, gen_owner, fake):
    fake.mode = "redirect_private"
    before = fake.paths().count("/files/img-0.png")
    generated(gen_stack, {"prompt": PROMPT}, gen_owner.headers, "openai")
    assert "/redirect/private" in fake.paths()
    assert fake.paths().count("/files/img-0.png") == before


def test_mixed_outputs_keep_their_slots(gen_stack, gen_owner, fake):
    fake.mode = "mixed"
    body = generated(gen_stack, {"prompt": PROMPT, "n": 3}, gen_owner.headers, "openai")
    first, second, third = body["hosted_images"]
    assert second is None and body["image_urls"][1] == fake.url("/redirect/private")
    assert served(gen_stack, first["url"], gen_owner.headers).content == fake.image_bytes(0)
    assert served(gen_stack, third["url"], gen_owner.headers).content == fake.image_bytes(2)
    assert {i["id"] for i in images_of(gen_stack, gen_owner)} == {first["id"], third["id"]}


def test_a_provider_host_off_the_allowlist_is_never_fetched(gen_stack, gen_owner, fake, elsewhere):
    fake.files_origin = elsewhere.origin
    body = generated(gen_stack, {"prompt": PROMPT, "n": 2}, gen_owner.headers, "openai")
    assert body["hosted_images"] == [None, None]
    assert [url.split("?")[0] for url in body["image_urls"]] == [elsewhere.url(f"/files/img-{i}.png") for i in range(2)]
    assert elsewhere.requests == []
    assert "not on the fetch allowlist" in generation_row(gen_stack, body["generation_id"]).error


def test_anonymous_openai_generation_is_public(gen_stack, fake, anonymous):
    body = generated(gen_stack, {"prompt": PROMPT}, generator="openai", session=anonymous)
    [hosted] = body["hosted_images"]
    assert hosted["visibility"] == "public" and hosted["expires_at"] is not None
    assert served(gen_stack, hosted["url"], session=anonymous).content == fake.image_bytes(0)


# --- bad requests ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"prompt": ""},
        {"prompt": " \n\t "},
        {"prompt": 42},
        {"prompt": "x" * 2001},
        {"prompt": "x", "n": 0},
        {"prompt": "x", "n": 5},
        {"prompt": "x", "n": "2"},
        {"prompt": "x", "n": True},
        {"prompt": "x", "n": 1.5},
        {"prompt": "x", "aspect_ratio": "5:4"},
        {"prompt": "x", "aspect_ratio": None},
        {"prompt": "x", "seed": -1},
        {"prompt": "x", "seed": "7"},
        {"prompt": "x", "seed": 2**63},
        {"prompt": "x", "auto_enhance": "yes"},
        {"prompt": "x", "template": "baroque"},
        {"prompt": "x", "template": 3},
        {"prompt": "x", "size": "1024x1024"},
    ],
)
def test_invalid_requests_are_400_and_leave_nothing(gen_stack, gen_owner, body):
    response = generate(gen_stack, body, gen_owner.headers)
    assert response.status_code == 400 and error_code(response) == "invalid_request", response.text
    assert images_of(gen_stack, gen_owner) == []


def test_a_lone_surrogate_in_the_prompt_is_400(gen_stack, gen_owner):
    response = requests.post(
        f"{gen_stack.url}/v1/image-generators/builtin/generate",
        data=b'{"prompt": "fox \\ud800"}',
        headers={**gen_owner.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and error_code(response) == "invalid_request"


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b'"prompt"'])
def test_a_body_that_is_not_a_json_object_is_400(gen_stack, gen_owner, data):
    headers = {**gen_owner.headers, "Content-Type": "application/json"}
    response = requests.post(f"{gen_stack.url}/v1/image-generators/builtin/generate", data=data, headers=headers)
    assert response.status_code == 400 and error_code(response) == "invalid_request"


@pytest.mark.parametrize("body", [{"prompt": PROMPT}, {"nonsense": True}])
def test_an_unknown_generator_is_404(gen_stack, gen_owner, body):
    response = generate(gen_stack, body, gen_owner.headers, "dalle-9")
    assert response.status_code == 404 and error_code(response) == "generator_not_found"


def test_get_on_generate_is_405(gen_stack, http):
    response = http.get(f"{gen_stack.url}/v1/image-generators/builtin/generate")
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"


def test_a_lone_surrogate_in_a_prompt_is_400_and_generates_nothing(gen_stack, gen_owner):
    before = generation_count(gen_stack)
    response = requests.post(f"{gen_stack.url}/v1/image-generators/builtin/generate", data=r'{"prompt": "a cat \ud800"}',
                             headers={**gen_owner.headers, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"
    assert generation_count(gen_stack) == before
