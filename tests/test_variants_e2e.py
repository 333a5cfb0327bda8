"""Variants end to end: through nginx (local and S3) and Flask streaming, access rules, one render, the limit."""

import io
import json
import os
import secrets
import time
from datetime import datetime, timezone
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from tests import factories
from tests.live_helpers import client, start_live_stack


def upload(stack, owner, data, **fields):
    response = requests.post(
        f"{stack.url}/v1/images",
        headers=owner.headers,
        files={"file": (fields.pop("filename", "picture.png"), data, "application/octet-stream")},
        data={k: str(v) for k, v in fields.items()},
    )
    assert response.status_code == 201, response.text
    return response.json()


def alpha_png():
    picture = Image.new("RGBA", (400, 300), (0, 0, 255, 128))
    picture.paste((255, 0, 0, 255), (0, 0, 200, 300))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def decoded(response):
    return Image.open(io.BytesIO(response.content))


def stats(stack):
    result = stack.admin("variants", "stats", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_variants_have_their_size_format_and_headers(stack, owner, http):
    record = upload(stack, owner, alpha_png(), visibility="public", filename="hero.png")
    original = http.get(record["url"])
    before = len(stack.blob_keys())

    webp = http.get(record["url"], params={"w": "128", "fm": "webp"})
    assert webp.status_code == 200
    assert webp.headers["Content-Type"] == "image/webp"
    assert webp.headers["X-Content-Type-Options"] == "nosniff"
    assert webp.headers["Cache-Control"] == original.headers["Cache-Control"]
    assert "Vary" not in webp.headers
    assert decoded(webp).format == "WEBP" and decoded(webp).size == (128, 96) and decoded(webp).mode == "RGBA"
    assert webp.headers["ETag"] and webp.headers["ETag"] != original.headers["ETag"]
    assert len(stack.blob_keys()) == before + 1

    # Served again: the same bytes, the stored blob, conditionals and ranges as for originals.
    again = http.get(record["url"], params={"fm": "webp", "w": "128", "v": "3"})
    assert again.content == webp.content and again.headers["ETag"] == webp.headers["ETag"]
    revalidated = http.get(record["url"], params={"w": "128", "fm": "webp"}, headers={"If-None-Match": webp.headers["ETag"]})
    assert revalidated.status_code == 304
    ranged = http.get(record["url"], params={"w": "128", "fm": "webp"}, headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and ranged.content == webp.content[:10]
    assert len(stack.blob_keys()) == before + 1
    if stack.settings.accel == "nginx" and stack.settings.storage == "local":
        # Served again from nginx's fast path: a link to the variant's blob, made by the kept decision.
        assert [name for _dir, _subdirs, names in os.walk(stack.settings.link_dir) for name in names if "~v" in name]

    # No variant parameter: the original's bytes, whatever else the query says.
    assert http.get(record["url"], params={"v": "3"}).content == original.content

    # The same variant by /cdn name.
    by_name = http.get(f"{stack.url}/cdn/{owner.project}/img/hero.png", params={"w": "128", "fm": "webp"})
    assert by_name.status_code == 200 and by_name.content == webp.content
    cover = http.get(f"{stack.url}/cdn/{owner.project}/img/hero.png", params={"w": "64", "h": "64", "fit": "cover", "fm": "jpeg"})
    assert cover.headers["Content-Type"] == "image/jpeg" and decoded(cover).size == (64, 64)


def test_auto_format_follows_accept_and_varies_on_it(stack, owner, http):
    record = upload(stack, owner, factories.jpeg((300, 200)), visibility="public", filename="photo.jpg")
    for accept, content_type in (
        ("image/avif,image/webp,*/*", "image/avif"),
        ("image/webp,*/*;q=0.8", "image/webp"),
        ("*/*", "image/jpeg"),
        ("image/avif,image/webp,*/*", "image/avif"),
    ):
        response = http.get(record["url"], params={"w": "96", "fm": "auto"}, headers={"Accept": accept})
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == content_type
        assert response.headers["Vary"] == "Accept"
        assert Image.MIME[decoded(response).format] == content_type and decoded(response).width == 96


def get_raw(session, url, **kwargs):
    """GET `url` exactly as written: requests would decode escapes of unreserved characters (`%66` to `f`)."""
    prepared = session.prepare_request(requests.Request("GET", url, **kwargs))
    prepared.url = url
    return session.send(prepared)


def test_percent_encoded_variant_parameters_are_refused(stack, owner, http):
    # nginx sets Vary from the raw query while Flask decodes it: `%66m=auto` would serve a
    # negotiated AVIF without `Vary: Accept`, which a shared cache would then hand to anyone.
    record = upload(stack, owner, factories.jpeg((300, 200)), visibility="public", filename="encoded.jpg")
    avif = {"Accept": "image/avif,image/webp,*/*"}
    for _ in range(2):  # rendered, then served from nginx's fast path (where it has one)
        plain = http.get(record["url"], params={"w": "96", "fm": "auto"}, headers=avif)
        assert plain.headers["Content-Type"] == "image/avif" and plain.headers["Vary"] == "Accept"
    signed = requests.post(
        f"{stack.url}/v1/images/{record['id']}/signed-url", headers=owner.headers, json={"w": 96, "fm": "auto"}
    ).json()["url"]
    cdn = f"{stack.url}/cdn/{owner.project}/img/encoded.jpg"
    for query in ("%66m=auto&%77=96", "w=96&fm=%61uto", "w=96&f%6D=auto", "w=9%36&fm=auto"):
        for url, code in ((f"{record['url']}?{query}", "invalid_request"), (f"{cdn}?{query}", "VALIDATION_ERROR")):
            response = get_raw(http, url, headers=avif)
            assert response.status_code == 400, (url, response.status_code, response.headers)
            assert response.json()["error"]["code"] == code and "percent-encoding" in response.text
    # A signed URL whose parameters are re-encoded still verifies (the signature covers the decoded values).
    encoded = get_raw(http, signed.replace("fm=auto", "%66m=auto"), headers=avif)
    assert encoded.status_code == 400 and encoded.json()["error"]["code"] == "invalid_request"
    assert get_raw(http, signed, headers=avif).headers["Vary"] == "Accept"


@pytest.mark.parametrize(
    "query,allowed",
    [
        ("w=0", "16, 32"),
        ("w=641", "640, 750"),
        ("w=abc", "3840"),
        ("w=640&w=640", "once"),
        ("w=640&fit=cover", "both w and h"),
        ("fm=gif", "auto, webp, avif, jpeg, png"),
        ("fm=svg", "auto, webp, avif, jpeg, png"),
    ],
)
def test_bad_parameters_are_refused_and_nothing_is_rendered(plain_stack, query, allowed):
    owner = plain_stack.new_owner()
    record = upload(plain_stack, owner, factories.png((100, 80)), visibility="public", filename="bad.png")
    before = plain_stack.blob_keys()
    for url in (f"{record['url']}?{query}", f"{plain_stack.url}/cdn/{owner.project}/img/bad.png?{query}"):
        response = requests.get(url)
        assert response.status_code == 400, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        assert allowed in response.text
    assert requests.get(f"{record['url']}?{query}").json()["error"]["code"] == "invalid_request"
    assert plain_stack.blob_keys() == before


def test_variants_answer_under_the_originals_rules(plain_stack, http):
    stack = plain_stack
    owner, other = stack.new_owner(), stack.new_owner()
    query = {"w": "64", "fm": "webp"}
    public = upload(stack, owner, factories.png((200, 100)), visibility="public")
    private = upload(stack, owner, factories.png((200, 100)))
    brief = upload(stack, owner, factories.png((200, 100)), visibility="public")

    assert http.get(public["url"], params=query).status_code == 200
    assert http.get(private["url"], params=query).status_code == 401
    assert http.get(private["url"], params=query, headers=other.headers).status_code == 404
    served = http.get(private["url"], params=query, headers=owner.headers)
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/webp"
    assert served.headers["Cache-Control"] == "private, no-store"

    # Made private: the next anonymous request of a variant nginx has served is refused.
    assert http.get(brief["url"], params=query).status_code == 200
    assert http.get(brief["url"], params=query).status_code == 200
    http.patch(f"{stack.url}/v1/images/{brief['id']}", headers=owner.headers, json={"visibility": "private"})
    assert http.get(brief["url"], params=query).status_code == 401
    # Expired.
    expiring = upload(stack, owner, factories.png((200, 100)), visibility="public", ttl_seconds=2)
    assert http.get(expiring["url"], params=query).status_code == 200
    expires_at = datetime.strptime(expiring["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    time.sleep(max(0.0, (expires_at - datetime.now(timezone.utc)).total_seconds()) + 0.05)
    assert http.get(expiring["url"], params=query).status_code == 404
    assert http.get(expiring["url"], params=query, headers=owner.headers).status_code == 404

    # Deleted: the variant goes with it, and so do its blob and row.
    before = stats(stack)["variants"]
    assert http.delete(f"{stack.url}/v1/images/{public['id']}", headers=owner.headers).status_code == 204
    assert http.get(public["url"], params=query).status_code == 404
    assert stats(stack)["variants"] == before - 1


def test_the_s3_and_flask_modes_store_variants_as_blobs(stack, owner, http):
    record = upload(stack, owner, factories.jpeg((300, 300)), visibility="public")
    before = stats(stack)["variants"]
    response = http.get(record["url"], params={"w": "48", "fm": "png"})
    assert response.status_code == 200 and decoded(response).size == (48, 48)
    assert stats(stack)["variants"] == before + 1
    assert stack.admin("variants", "purge", "--image", record["id"]).exit_code == 0
    assert stats(stack)["variants"] == before
    assert http.get(record["url"], params={"w": "48", "fm": "png"}).content == response.content


@pytest.fixture(scope="module")
def limited_stack(stack_root, mysql_databases, database_kind):
    running = start_live_stack(stack_root, mysql_databases, database_kind, GOODEYE_VARIANT_RENDER_LIMIT="2/hour")
    yield running
    running.stack.stop()


def test_concurrent_first_requests_render_once_and_new_renders_are_limited(limited_stack):
    stack = limited_stack
    owner = stack.new_owner()
    record = upload(stack, owner, factories.jpeg((2000, 1500)), visibility="public", filename="big.jpg")
    url = f"{record['url']}?w=640&fm=webp"
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda _: requests.get(url), range(16)))
    assert [response.status_code for response in responses] == [200] * 16
    assert len({response.content for response in responses}) == 1
    assert stats(stack)["variants"] == 1

    # The 16 requests counted as one render against the limit of 2: one more new render is allowed.
    assert requests.get(f"{record['url']}?w=384").status_code == 200
    refused = requests.get(f"{record['url']}?w=256")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    by_name = requests.get(f"{stack.url}/cdn/{owner.project}/img/big.jpg?w=256")
    assert by_name.status_code == 429 and by_name.json()["error"]["code"] == "IP_RATE_LIMIT_EXCEEDED"
    # Existing variants are never limited, and callers with a key are not counted.
    assert requests.get(url).status_code == 200
    assert requests.get(f"{record['url']}?w=256", headers=owner.headers).status_code == 200
    assert stats(stack)["variants"] == 3
    # Each variant holds a reference to its blob: the recount from images and variants agrees.
    assert stack.admin("blobs", "check").exit_code == 0
    assert requests.delete(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers).status_code == 204
    assert stats(stack)["variants"] == 0
    assert stack.admin("blobs", "check").exit_code == 0


def test_signed_variant_urls_are_not_counted_against_the_viewers_address(limited_stack):
    # The console's private thumbnails: many signed variant URLs loaded from the owner's address.
    stack = limited_stack
    owner = stack.new_owner()
    signed = []
    for index in range(4):  # twice the limit of 2
        record = upload(stack, owner, factories.jpeg((300, 200 + index)), filename=f"private-{index}.jpg")
        response = requests.post(
            f"{stack.url}/v1/images/{record['id']}/signed-url", headers=owner.headers, json={"w": 96, "fit": "scale-down"}
        )
        signed.append(response.json()["url"])
    viewer = client()
    assert [viewer.get(url).status_code for url in signed] == [200] * 4
    # Unsigned anonymous new renders from the same address are still limited: 2 of them.
    public = upload(stack, owner, factories.jpeg((400, 300)), visibility="public", filename="public.jpg")
    assert [viewer.get(public["url"], params={"w": size}).status_code for size in (64, 96, 128)] == [200, 200, 429]


def test_live_urls_serve_variants(limited_stack):
    stack = limited_stack
    owner = stack.new_owner()
    scope = f"s{secrets.token_hex(3)}"
    url = f"{stack.url}/cdn/{owner.project}/live/{scope}"
    params = {"prompt": "a red bicycle", "w": "64", "fm": "png"}
    first = requests.get(url, params=params, headers=owner.headers)
    assert first.status_code == 200, first.text
    assert first.headers["Content-Type"] == "image/png" and decoded(first).width == 64
    again = requests.get(url, params=params)
    assert again.headers["X-Cache-Status"] == "HIT" and again.content == first.content
    assert requests.get(url, params=params).content == first.content
    # A HIT's variant parameters percent-encoded: refused like on the other serving URLs.
    with requests.Session() as session:
        encoded = get_raw(session, f"{url}?prompt=a+red+bicycle&%77=64&%66m=auto", headers={"Accept": "image/avif"})
    assert encoded.status_code == 400 and encoded.json()["error"]["code"] == "VALIDATION_ERROR"


def test_a_live_miss_serves_its_variant_when_the_render_limit_is_spent(limited_stack):
    stack = limited_stack
    owner = stack.new_owner()
    record = upload(stack, owner, factories.jpeg((800, 600)), visibility="public")
    visitor = client()
    # This address spends its 2 new renders on another image of the page.
    for width in (128, 256):
        assert visitor.get(f"{record['url']}?w={width}").status_code == 200
    assert visitor.get(f"{record['url']}?w=384").status_code == 429

    # A live URL's first load generates the image: the live limit counted it, and its
    # variant is part of that answer, not a new render to refuse after generating.
    url = f"{stack.url}/cdn/{owner.project}/live/s{secrets.token_hex(3)}"
    params = {"prompt": "a harbour at noon", "w": "384", "fm": "webp"}
    first = visitor.get(url, params=params)
    assert first.status_code == 200, first.text
    assert first.headers["X-Cache-Status"] == "MISS" and first.headers["Content-Type"] == "image/webp"
    assert decoded(first).width == 384
    assert int(first.headers["X-RateLimit-Remaining"]) == 9
    again = visitor.get(url, params=params)
    assert again.headers["X-Cache-Status"] == "HIT" and again.content == first.content

    # A HIT's new width is a new render: the spent limit still refuses it.
    refused = visitor.get(url, params={**params, "w": "256"})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "IP_RATE_LIMIT_EXCEEDED"
