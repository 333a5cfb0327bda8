"""The `openai` generator against a real fake provider, in every mode it has."""

import io

import pytest
from PIL import Image, UnidentifiedImageError

from goodeye.errors import GenerationFailed, InvalidRequest
from goodeye.generation.base import ASPECT_RATIOS, GeneratedOutput
from goodeye.generation.fetch import FetchFailed, FetchRefused, fetch_image_bytes
from goodeye.generation.openai import SIZES, OpenAIGenerator, _output, size_for
from tests.fake_openai import FAILING_MESSAGE, FakeOpenAI

MAX = 200_000


@pytest.fixture
def fake():
    with FakeOpenAI(slow_seconds=10) as server:
        yield server


@pytest.fixture
def generator(fake):
    return OpenAIGenerator(fake.base_url, fake.api_key, "fake-image-model", timeout_seconds=5)


def fetch(fake, url):
    return fetch_image_bytes(url, allowlist=[fake.allowlist_entry], max_bytes=MAX, timeout_seconds=5)


def assert_clean_failure(excinfo, fake):
    error = excinfo.value
    assert error.status == 502 and error.slug == "generation_failed"
    assert fake.api_key not in error.message
    assert "Traceback" not in error.message and "\n" not in error.message
    assert fake.origin not in error.message


def test_url_mode_returns_provider_urls_that_fetch_to_real_pngs(fake, generator):
    outputs = generator.generate("a red fox in snow", 2, "1:1", seed=7)
    assert [o.data for o in outputs] == [None, None]
    assert all(o.url.startswith(fake.url("/files/img-")) for o in outputs)
    for index, output in enumerate(outputs):
        body = fetch(fake, output.url)
        assert body == fake.image_bytes(index)
        assert Image.open(io.BytesIO(body)).format == "PNG"


def test_request_is_an_openai_images_call(fake, generator):
    generator.generate("a red fox in snow", 3, "16:9", seed=7)
    (request,) = fake.generation_requests
    assert request.method == "POST" and request.path == "/v1/images/generations"
    assert request.headers["authorization"] == f"Bearer {fake.api_key}"
    assert request.json == {"model": "fake-image-model", "prompt": "a red fox in snow", "n": 3, "size": "1536x1024"}


@pytest.mark.parametrize(
    "aspect_ratio, size",
    [
        ("1:1", "1024x1024"),
        ("16:9", "1536x1024"),
        ("4:3", "1536x1024"),
        ("3:2", "1536x1024"),
        ("21:9", "1536x1024"),
        ("9:16", "1024x1536"),
        ("3:4", "1024x1536"),
        ("2:3", "1024x1536"),
    ],
)
def test_aspect_ratio_maps_to_size_of_its_orientation(fake, generator, aspect_ratio, size):
    generator.generate("x", 1, aspect_ratio, seed=None)
    assert fake.generation_requests[-1].json["size"] == size


@pytest.mark.parametrize("aspect_ratio", sorted(ASPECT_RATIOS))
def test_every_aspect_ratio_has_a_size(aspect_ratio):
    assert size_for(aspect_ratio) in SIZES.values()


def test_sizes_can_be_overridden_for_other_providers(fake):
    generator = OpenAIGenerator(fake.base_url, fake.api_key, "dall-e-3", 5, sizes={"landscape": "1792x1024"})
    generator.generate("x", 1, "16:9", seed=None)
    assert fake.generation_requests[-1].json["size"] == "1792x1024"


def test_unknown_aspect_ratio_is_an_invalid_request(fake, generator):
    with pytest.raises(InvalidRequest):
        generator.generate("x", 1, "5:4", seed=None)
    assert fake.generation_requests == []


def test_b64_json_mode_returns_the_decoded_bytes(fake, generator):
    fake.mode = "b64_json"
    outputs = generator.generate("a lighthouse", 2, "9:16", seed=None)
    assert outputs == [GeneratedOutput(data=fake.image_bytes(0)), GeneratedOutput(data=fake.image_bytes(1))]


def test_invalid_base64_slot_is_kept_empty_and_the_others_survive(fake, generator):
    fake.mode = "bad_b64"
    outputs = generator.generate("a lighthouse", 3, "1:1", seed=None)
    assert outputs[0] == GeneratedOutput()
    assert [o.data for o in outputs[1:]] == [fake.image_bytes(1), fake.image_bytes(2)]


def test_only_invalid_base64_is_a_failure(fake, generator):
    fake.mode = "bad_b64"
    with pytest.raises(GenerationFailed, match="no usable image") as excinfo:
        generator.generate("a lighthouse", 1, "1:1", seed=None)
    assert_clean_failure(excinfo, fake)


@pytest.mark.slow
def test_slow_provider_times_out(fake):
    generator = OpenAIGenerator(fake.base_url, fake.api_key, "fake-image-model", timeout_seconds=1)
    fake.mode = "slow"
    with pytest.raises(GenerationFailed, match="did not answer within 1 seconds") as excinfo:
        generator.generate("x", 1, "1:1", seed=None)
    assert_clean_failure(excinfo, fake)


def test_failing_provider_message_is_carried(fake, generator):
    fake.mode = "failing"
    with pytest.raises(GenerationFailed) as excinfo:
        generator.generate("x", 1, "1:1", seed=None)
    assert "HTTP 500" in excinfo.value.message
    assert FAILING_MESSAGE in excinfo.value.message
    assert_clean_failure(excinfo, fake)


def test_wrong_key_message_is_carried_without_the_key(fake):
    secret = "sk-wrong-but-still-secret-987654321"
    generator = OpenAIGenerator(fake.base_url, secret, "fake-image-model", 5)
    with pytest.raises(GenerationFailed, match="Incorrect API key provided") as excinfo:
        generator.generate("x", 1, "1:1", seed=None)
    # The fake quotes the key it was given; the adapter must not pass it on.
    assert secret in fake.generation_requests[-1].headers["authorization"]
    assert secret not in excinfo.value.message and secret not in str(excinfo.value)
    assert "HTTP 401" in excinfo.value.message


def test_malformed_answer_fails(fake, generator):
    fake.mode = "malformed"
    with pytest.raises(GenerationFailed, match="not valid JSON") as excinfo:
        generator.generate("x", 2, "1:1", seed=None)
    assert_clean_failure(excinfo, fake)


def test_fewer_outputs_than_asked_fails(fake, generator):
    fake.mode = "short"
    with pytest.raises(GenerationFailed, match="for 3 images; it returned 2") as excinfo:
        generator.generate("x", 3, "1:1", seed=None)
    assert_clean_failure(excinfo, fake)


def test_unreachable_provider_fails():
    with FakeOpenAI() as gone:
        base_url, key = gone.base_url, gone.api_key
    generator = OpenAIGenerator(base_url, key, "fake-image-model", 5)
    with pytest.raises(GenerationFailed, match="Could not reach") as excinfo:
        generator.generate("x", 1, "1:1", seed=None)
    assert base_url not in excinfo.value.message


def test_redirect_private_urls_are_returned_but_refused_by_the_fetcher(fake, generator):
    fake.mode = "redirect_private"
    outputs = generator.generate("x", 2, "1:1", seed=None)
    assert [o.url for o in outputs] == [fake.url("/redirect/private")] * 2
    with pytest.raises(FetchRefused):
        fetch(fake, outputs[0].url)
    # The redirect itself was read; its loopback target was never requested.
    assert [p for p in fake.paths() if p.startswith("/files/")] == []


def test_svg_urls_fetch_to_bytes_that_are_not_an_image(fake, generator):
    fake.mode = "svg"
    (output,) = generator.generate("x", 1, "1:1", seed=None)
    body = fetch(fake, output.url)
    assert body.startswith(b"<?xml") and b"<svg" in body
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(body))


def test_oversized_urls_fail_to_fetch(fake, generator):
    fake.mode = "oversized"
    (output,) = generator.generate("x", 1, "1:1", seed=None)
    with pytest.raises(FetchFailed, match="cap"):
        fetch(fake, output.url)


def test_mixed_outputs_keep_their_slots(fake, generator):
    fake.mode = "mixed"
    outputs = generator.generate("x", 3, "1:1", seed=None)
    assert len(outputs) == 3
    hosted = []
    for output in outputs:
        try:
            hosted.append(fetch(fake, output.url))
        except (FetchRefused, FetchFailed):
            hosted.append(None)
    assert hosted == [fake.image_bytes(0), None, fake.image_bytes(2)]


def test_more_outputs_than_asked_are_cut(fake, generator):
    fake.mode = "extra"
    outputs = generator.generate("x", 2, "1:1", seed=None)
    assert [o.url for o in outputs] == [fake.url(f"/files/img-{i}.png?se=2030-01-01&sig=fake") for i in range(2)]


def test_unsafe_url_schemes_are_not_passed_on():
    assert _output({"url": "javascript:alert(1)"}) == GeneratedOutput()
    assert _output({"url": "file:///etc/passwd"}) == GeneratedOutput()
    assert _output("not an object") == GeneratedOutput()
    assert _output({"url": "https://cdn.example/a.png", "b64_json": "AAAA"}) == GeneratedOutput(
        data=b"\x00\x00\x00", url="https://cdn.example/a.png"
    )


def test_listing_is_honest_and_leaks_nothing(fake, generator):
    listing = generator.describe()
    assert listing["id"] == "openai" and listing["is_ai_model"] is True
    text = repr(listing)
    assert fake.api_key not in text and fake.origin not in text
