"""Signed serving URLs: a private image in an <img>, until `expires`, through nginx and Flask alike."""

import hashlib
import re
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from tests import factories
from tests.test_images_e2e import error_code, uploaded


def sign(stack, owner, image_id, **body):
    """POST /v1/images/{id}/signed-url; the response, asserting 200."""
    response = requests.post(f"{stack.url}/v1/images/{image_id}/signed-url", headers=owner.headers, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def with_query(url, pairs):
    """The URL with its query replaced by `pairs` (a list, so parameters may repeat)."""
    return url.split("?")[0] + ("?" + urlencode(pairs) if pairs else "")


def query_pairs(url):
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def max_age(response):
    match = re.fullmatch(r"private, max-age=(\d+)", response.headers["Cache-Control"])
    assert match, response.headers["Cache-Control"]
    return int(match.group(1))


def wait_until(moment):
    """Sleep until the wall clock has passed `moment` (Unix seconds)."""
    while time.time() < moment:
        time.sleep(max(0.01, moment - time.time()))


def test_a_signed_url_serves_a_private_image_to_anyone_with_private_caching(stack, owner, http):
    data = factories.png()
    record = uploaded(stack, owner, data)
    assert http.get(record["url"]).status_code == 401
    signed = sign(stack, owner, record["id"], expires_in=600)
    pairs = query_pairs(signed["url"])
    assert [name for name, _ in pairs] == ["expires", "signature"] and signed["url"].startswith(record["url"] + "?")
    assert abs(int(pairs[0][1]) - (time.time() + 600)) < 30
    for _ in range(3):  # the first asks the check, the next ones may use nginx's kept decision
        response = http.get(signed["url"])
        assert response.status_code == 200 and response.content == data
        assert response.headers["Content-Type"] == "image/png" and response.headers["X-Content-Type-Options"] == "nosniff"
        assert 590 <= max_age(response) <= 600
    head = http.head(signed["url"])
    assert head.status_code == 200 and head.content == b""


def test_cache_control_is_bounded_by_the_signature_and_by_the_ttl(stack, owner, http):
    short_ttl = uploaded(stack, owner, ttl_seconds=100)
    assert 90 <= max_age(http.get(sign(stack, owner, short_ttl["id"], expires_in=3600)["url"])) <= 100
    permanent = uploaded(stack, owner)
    assert 40 <= max_age(http.get(sign(stack, owner, permanent["id"], expires_in=50)["url"])) <= 50


def test_a_signed_url_stops_exactly_at_expires(stack, owner, http):
    record = uploaded(stack, owner)
    url = sign(stack, owner, record["id"], expires_in=3)["url"]
    assert http.get(url).status_code == 200
    wait_until(int(dict(query_pairs(url))["expires"]))
    response = http.get(url)
    assert response.status_code == 403 and error_code(response) == "signature_expired"


def test_visibility_changes_do_not_touch_a_signed_url(stack, owner, http):
    data = factories.png()
    record = uploaded(stack, owner, data)
    url = sign(stack, owner, record["id"], expires_in=600)["url"]
    for visibility in ("public", "private"):
        patched = http.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, json={"visibility": visibility})
        assert patched.status_code == 200
        response = http.get(url)
        assert response.status_code == 200 and response.content == data
        assert response.headers["Cache-Control"].startswith("private, max-age=")


def test_delete_stops_a_hot_signed_url_at_once(stack, owner, other_owner, http):
    data = factories.png()
    record = uploaded(stack, owner, data)
    # Another image with the same bytes keeps the blob alive: only the link's removal can stop the URL.
    uploaded(stack, other_owner, data)
    url = sign(stack, owner, record["id"], expires_in=600)["url"]
    assert http.get(url).status_code == 200 and http.get(url).status_code == 200
    assert http.delete(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers).status_code == 204
    response = http.get(url)
    assert response.status_code == 404 and error_code(response) == "image_not_found"


def test_an_expired_image_is_404_on_a_signed_url(stack, owner, http):
    record = uploaded(stack, owner, ttl_seconds=2)
    url = sign(stack, owner, record["id"], expires_in=600)["url"]
    assert http.get(url).status_code == 200
    wait_until(time.time() + 2.1)
    response = http.get(url)
    assert response.status_code == 404 and error_code(response) == "image_not_found"


def test_rotating_the_signing_key_refuses_earlier_urls_within_two_seconds(stack, owner, http):
    record = uploaded(stack, owner)
    url = sign(stack, owner, record["id"], expires_in=600)["url"]
    assert http.get(url).status_code == 200 and http.get(url).status_code == 200
    rotated = http.post(f"{stack.url}/v1/signing-key/rotate", headers=owner.headers)
    assert rotated.status_code == 200 and rotated.json()["rotated_at"]
    done = time.time()
    if stack.settings.accel == "off":
        # No kept decision: the very next request is refused.
        assert http.get(url).status_code == 403
    # A decision nginx kept is at most two seconds old.
    wait_until(done + 2.05)
    response = http.get(url)
    assert response.status_code == 403 and error_code(response) == "invalid_signature"
    fresh = sign(stack, owner, record["id"], expires_in=600)["url"]
    assert http.get(fresh).status_code == 200


def _mutations(url, other_token):
    pairs = query_pairs(url)
    expires, signature = dict(pairs)["expires"], dict(pairs)["signature"]
    flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    return {
        "one character changed": (with_query(url, [("expires", expires), ("signature", flipped)]), 403, "invalid_signature"),
        "cut short": (with_query(url, [("expires", expires), ("signature", signature[:-3])]), 403, "invalid_signature"),
        "empty": (with_query(url, [("expires", expires), ("signature", "")]), 403, "invalid_signature"),
        "no signature": (with_query(url, [("expires", expires)]), 403, "invalid_signature"),
        "no expires": (with_query(url, [("signature", signature)]), 403, "invalid_signature"),
        "repeated": (with_query(url, [("expires", expires), ("signature", signature), ("signature", signature)]), 403, "invalid_signature"),
        "repeated expires": (with_query(url, [("expires", expires), ("expires", expires), ("signature", signature)]), 403, "invalid_signature"),
        "a parameter added": (with_query(url, [("w", "640"), ("expires", expires), ("signature", signature)]), 403, "invalid_signature"),
        "a cache buster added": (with_query(url, [("expires", expires), ("signature", signature), ("v", "3")]), 403, "invalid_signature"),
        "expires changed": (with_query(url, [("expires", str(int(expires) + 1)), ("signature", signature)]), 403, "invalid_signature"),
        "expires moved into the past": (with_query(url, [("expires", "1000000000"), ("signature", signature)]), 403, "invalid_signature"),
        "expires not numeric": (with_query(url, [("expires", "soon"), ("signature", signature)]), 400, "invalid_request"),
        "expires negative": (with_query(url, [("expires", "-5"), ("signature", signature)]), 400, "invalid_request"),
        "expires 400 digits": (with_query(url, [("expires", "9" * 400), ("signature", signature)]), 400, "invalid_request"),
        "another project's token": (
            with_query(url.replace(urlsplit(url).path.split("/")[-1].split(".")[0], other_token), pairs), 403, "invalid_signature",
        ),
    }


def test_a_tampered_signed_url_is_refused_without_the_bytes(stack, owner, other_owner, http):
    record = uploaded(stack, owner)
    other = uploaded(stack, other_owner)
    # The other project has a signing key of its own.
    sign(stack, other_owner, other["id"])
    url = sign(stack, owner, record["id"], expires_in=600)["url"]
    assert http.get(url).status_code == 200
    wrong = {}
    for mutation, (tampered, status, slug) in _mutations(url, other["token"]).items():
        for _ in range(2):  # the second may meet a decision nginx kept
            response = http.get(tampered)
            if response.status_code != status or error_code(response) != slug:
                wrong[mutation] = (response.status_code, response.text[:200])
    assert not wrong


def test_a_signature_made_before_its_expiry_passed_is_expired_not_invalid(stack, owner, http):
    record = uploaded(stack, owner)
    url = sign(stack, owner, record["id"], expires_in=1)["url"]
    wait_until(int(dict(query_pairs(url))["expires"]))
    assert error_code(http.get(url)) == "signature_expired"


def test_a_signed_variant_url_names_its_parameters_in_order(stack, owner, http):
    record = uploaded(stack, owner)
    signed = sign(stack, owner, record["id"], expires_in=600, fm="webp", w=640)
    pairs = query_pairs(signed["url"])
    assert [name for name, _ in pairs] == ["w", "fm", "expires", "signature"] and dict(pairs)["w"] == "640"
    for _ in range(2):
        served = http.get(signed["url"])
        assert served.status_code == 200 and served.headers["Content-Type"] == "image/webp"
        assert served.content[8:12] == b"WEBP" and served.headers["Cache-Control"].startswith("private, max-age=")
    changed = with_query(signed["url"], [("w", "256"), *pairs[1:]])
    assert error_code(http.get(changed)) == "invalid_signature"
    removed = with_query(signed["url"], pairs[1:])
    assert error_code(http.get(removed)) == "invalid_signature"


BAD_SIGNING_REQUESTS = [
    {"expires_in": 0}, {"expires_in": 604801}, {"expires_in": "60"}, {"expires_in": True}, {"expires_in": 1.5},
    {"w": 0}, {"w": "640"}, {"fit": "stretch"}, {"fm": "bmp"}, {"colour": "red"},
]


@pytest.mark.one_mode
def test_bad_signing_requests_are_400(stack, owner):
    record = uploaded(stack, owner)
    for body in BAD_SIGNING_REQUESTS:
        response = requests.post(f"{stack.url}/v1/images/{record['id']}/signed-url", headers=owner.headers, json=body)
        assert response.status_code == 400 and error_code(response) == "invalid_request", body
    response = requests.post(f"{stack.url}/v1/images/{record['id']}/signed-url", headers=owner.headers, data="[1]")
    assert response.status_code == 400


@pytest.mark.one_mode
def test_signing_needs_the_owner(stack, owner, other_owner, http):
    record = uploaded(stack, owner)
    assert http.post(f"{stack.url}/v1/images/{record['id']}/signed-url", json={}).status_code == 401
    response = http.post(f"{stack.url}/v1/images/{record['id']}/signed-url", headers=other_owner.headers, json={})
    assert response.status_code == 404 and error_code(response) == "image_not_found"
    assert http.post(f"{stack.url}/v1/signing-key/rotate").status_code == 401
    default = requests.post(f"{stack.url}/v1/images/{record['id']}/signed-url", headers=owner.headers).json()
    assert abs(int(dict(query_pairs(default["url"]))["expires"]) - (time.time() + 3600)) < 30


def test_a_signed_url_with_a_key_of_another_project_is_still_the_signed_url(stack, owner, other_owner, http):
    data = factories.png()
    record = uploaded(stack, owner, data)
    url = sign(stack, owner, record["id"], expires_in=600)["url"]
    response = http.get(url, headers=other_owner.headers)
    assert response.status_code == 200 and hashlib.sha256(response.content).hexdigest() == record["sha256"]
