"""New bytes under the same URL: PUT /v1/images/{id}/file, through nginx, Flask and S3."""

import base64
import hashlib
import io
import threading
import time

import requests
from PIL import Image

from goodeye.images.service import REPLACED_BYTES_GRACE_SECONDS
from tests import factories
from tests.test_images_e2e import _png_header_only, error_code, uploaded
from tests.test_signed_urls_e2e import sign

UNCHANGED = ("id", "token", "url", "visibility", "expires_at", "filename", "alias", "source", "created_at", "generation")


def replace(stack, owner, image_id, data, **fields):
    """PUT /v1/images/{id}/file as multipart."""
    return requests.put(
        f"{stack.url}/v1/images/{image_id}/file", headers=owner.headers,
        files={"file": ("new.bin", data, "application/octet-stream")}, data={k: str(v) for k, v in fields.items()},
    )


def wait_for_reclaim(stack, *sha256s):
    """Wait (a bounded while) until the replaced bytes are gone from the store; they outlive the swap by a grace."""
    deadline = time.monotonic() + REPLACED_BYTES_GRACE_SECONDS + 10
    while any(sha in stack.blob_keys() for sha in sha256s) and time.monotonic() < deadline:
        time.sleep(0.5)
    return [sha for sha in sha256s if sha in stack.blob_keys()]


def fetch(url, headers=None):
    response = requests.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return response


def test_replacing_keeps_the_url_and_serves_the_new_bytes_on_the_next_request(stack, owner, http):
    old_data, new_data = factories.png((64, 48)), factories.jpeg((80, 60))
    record = uploaded(stack, owner, old_data, visibility="public", ttl_seconds=3600, alias="@banner")
    signed = sign(stack, owner, record["id"], expires_in=600)["url"]
    for url in (record["url"], signed, record["url"], signed):  # a second round may use nginx's kept decisions
        assert http.get(url).content == old_data
    old_etag = http.get(record["url"]).headers["ETag"]

    response = replace(stack, owner, record["id"], new_data)
    assert response.status_code == 200, response.text
    new = response.json()
    assert {key: new[key] for key in UNCHANGED} == {key: record[key] for key in UNCHANGED}
    assert (new["content_type"], new["width"], new["height"], new["size_bytes"]) == ("image/jpeg", 80, 60, len(new_data))
    assert new["sha256"] == hashlib.sha256(new_data).hexdigest() and new["updated_at"] > record["updated_at"]

    for url, headers in ((record["url"], None), (signed, None), (record["url"], owner.headers)):
        served = fetch(url, headers)
        assert served.content == new_data and served.headers["Content-Type"] == "image/jpeg", url
        assert served.headers["ETag"] != old_etag
    assert wait_for_reclaim(stack, record["sha256"]) == [] and new["sha256"] in stack.blob_keys()
    assert requests.get(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers).json() == new


def test_a_json_replacement_can_strip_metadata(stack, owner):
    record = uploaded(stack, owner)
    original = factories.image_with_metadata("JPEG")
    response = requests.put(
        f"{stack.url}/v1/images/{record['id']}/file", headers=owner.headers,
        json={"data": base64.b64encode(original).decode(), "strip_metadata": True},
    )
    assert response.status_code == 200, response.text
    served = fetch(record["url"], owner.headers).content
    assert factories.SECRET not in served and hashlib.sha256(served).hexdigest() == response.json()["sha256"]


def test_a_refused_replacement_changes_nothing(stack, owner, http):
    old_data = factories.png()
    record = uploaded(stack, owner, old_data, visibility="public")
    blobs = stack.blob_keys()
    refusals = [
        (b"just some text, not an image", 415, "unsupported_image_type"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415, "unsupported_image_type"),
        (factories.png()[:40], 422, "invalid_image"),
        (_png_header_only(30000, 30000), 422, "image_too_large_dimensions"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (stack.settings.max_upload_bytes + 10), 413, "image_too_large"),
    ]
    for data, status, slug in refusals:
        response = replace(stack, owner, record["id"], data)
        assert response.status_code == status and error_code(response) == slug, slug
        served = http.get(record["url"])
        assert served.content == old_data and served.headers["Content-Type"] == "image/png"
    bad_bodies = [{"data": "not base64!"}, {"data": base64.b64encode(factories.png()).decode(), "visibility": "public"}, {}]
    for body in bad_bodies:
        response = requests.put(f"{stack.url}/v1/images/{record['id']}/file", headers=owner.headers, json=body)
        assert response.status_code == 400 and error_code(response) == "invalid_request", body
    assert requests.get(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers).json() == record
    # Nothing new was stored and the image's bytes are still there. Bytes an earlier test
    # replaced may be reclaimed meanwhile (they outlive their last reference by seconds).
    after = stack.blob_keys()
    assert set(after) <= set(blobs) and record["sha256"] in after


def test_only_the_owner_replaces(stack, owner, other_owner, http):
    data = factories.png()
    record = uploaded(stack, owner, data)
    assert http.put(f"{stack.url}/v1/images/{record['id']}/file", files={"file": ("x.png", factories.png())}).status_code == 401
    response = replace(stack, other_owner, record["id"], factories.png())
    assert response.status_code == 404 and error_code(response) == "image_not_found"
    assert replace(stack, owner, "img_nothingHere", factories.png()).status_code == 404
    assert fetch(record["url"], owner.headers).content == data


def test_replacing_bytes_another_image_shares_keeps_them_for_it(stack, owner, http):
    shared = factories.png()
    first = uploaded(stack, owner, shared, visibility="public")
    second = uploaded(stack, owner, shared, visibility="public")
    assert replace(stack, owner, first["id"], factories.gif()).status_code == 200
    assert fetch(second["url"]).content == shared and shared_sha(shared) in stack.blob_keys()
    # The same bytes again: one reference taken, one released.
    assert replace(stack, owner, second["id"], shared).status_code == 200
    assert fetch(second["url"]).content == shared and shared_sha(shared) in stack.blob_keys()


def shared_sha(data):
    return hashlib.sha256(data).hexdigest()


def test_concurrent_readers_see_only_whole_old_or_whole_new_images(stack, owner):
    versions = [factories.png((64, 48)), factories.jpeg((96, 64)), factories.gif((40, 40)), factories.webp((72, 50)), factories.png((30, 20))]
    kinds = {shared_sha(data): content_type for data, content_type in zip(versions, ["image/png", "image/jpeg", "image/gif", "image/webp", "image/png"])}
    record = uploaded(stack, owner, versions[0], visibility="public")
    signed = sign(stack, owner, record["id"], expires_in=600)["url"]
    stop = threading.Event()
    started = threading.Barrier(17)
    seen, problems = set(), []
    news = threading.Condition()

    def read(url):
        with requests.Session() as session:
            started.wait()
            while not stop.is_set():
                response = session.get(url)
                digest = shared_sha(response.content)
                if response.status_code != 200 or kinds.get(digest) != response.headers.get("Content-Type"):
                    problems.append((response.status_code, response.headers.get("Content-Type"), response.content[:80]))
                with news:
                    seen.add(digest)
                    news.notify_all()

    readers = [threading.Thread(target=read, args=(record["url"] if i % 2 else signed,)) for i in range(16)]
    for reader in readers:
        reader.start()
    started.wait()
    try:
        for data in versions[1:]:
            assert replace(stack, owner, record["id"], data).status_code == 200
            # Each version is read before the next replaces it, whatever the machine's speed.
            with news:
                assert news.wait_for(lambda: shared_sha(data) in seen, timeout=30), "the new bytes were never served"
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert not problems, problems[:5]
    final = fetch(record["url"])
    assert final.content == versions[-1] and final.headers["Content-Type"] == "image/png"
    assert wait_for_reclaim(stack, *map(shared_sha, versions[:-1])) == []


def test_a_generated_image_keeps_what_generated_its_old_bytes(plain_stack, http):
    owner = plain_stack.new_owner()
    body = {"prompt": "a lighthouse at dusk", "n": 1, "seed": 7}
    response = requests.post(f"{plain_stack.url}/v1/image-generators/builtin/generate", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    image_id = response.json()["hosted_images"][0]["id"]
    before = requests.get(f"{plain_stack.url}/v1/images/{image_id}", headers=owner.headers).json()
    new_data = factories.png()
    after = replace(plain_stack, owner, image_id, new_data).json()
    assert after["source"] == "generated" and after["generation"] == before["generation"]
    assert fetch(before["url"], owner.headers).content == new_data


def test_no_variant_of_the_old_bytes_is_served_after_a_replacement(stack, owner, http):
    old_data, new_data = factories.png((64, 48), color=(200, 30, 30)), factories.png((48, 64), color=(30, 30, 200))
    record = uploaded(stack, owner, old_data, visibility="public")
    variant = f"{record['url']}?w=32&fm=png"
    signed = sign(stack, owner, record["id"], expires_in=600, w=32, fm="png")["url"]
    before = {url: fetch(url, headers) for url, headers in ((variant, None), (variant, None), (signed, None), (variant, owner.headers))}
    assert all(Image.open(io.BytesIO(r.content)).size == (32, 24) for r in before.values())

    assert replace(stack, owner, record["id"], new_data).status_code == 200
    # Anonymous (nginx's kept decision and the variant's link on nginx-local), signed, and with the key.
    for url, headers in ((variant, None), (variant, None), (signed, None), (variant, owner.headers)):
        served = fetch(url, headers)
        picture = Image.open(io.BytesIO(served.content)).convert("RGB")
        assert picture.width == 32 and picture.height in (42, 43), (url, picture.size)  # the new bytes' shape
        assert picture.getpixel((16, 20)) == (30, 30, 200), url
        assert served.headers["ETag"] != before[url].headers["ETag"]
