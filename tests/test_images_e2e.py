"""The image hosting contract, end to end through nginx + gunicorn, in both serving modes."""

import base64
import hashlib
import io
import time
import zlib
import struct
from datetime import datetime, timezone

import pytest
import requests
from PIL import Image

from tests import factories


def upload(stack, owner, data, filename="image.png", **fields):
    """POST /v1/images as multipart."""
    return requests.post(
        f"{stack.url}/v1/images",
        headers=owner.headers,
        files={"file": (filename, data, "application/octet-stream")},
        data={k: str(v) for k, v in fields.items()},
    )


def uploaded(stack, owner, data=None, **fields):
    """Upload and return the record, asserting 201."""
    response = upload(stack, owner, data if data is not None else factories.png(), **fields)
    assert response.status_code == 201, response.text
    return response.json()


def error_code(response):
    """The slug of a /v1 error envelope."""
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    return response.json()["error"]["code"]


def parse_time(value):
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def blob_files(stack):
    return stack.blob_keys()


def image_count(stack, owner):
    response = requests.get(f"{stack.url}/v1/images?limit=100", headers=owner.headers)
    assert response.status_code == 200
    return len(response.json()["data"])


# --- upload and the record -------------------------------------------------


def test_upload_returns_the_full_record(stack, owner):
    data = factories.png((40, 30))
    response = upload(stack, owner, data, filename="hero.png", visibility="public")
    assert response.status_code == 201
    record = response.json()
    assert record["id"].startswith("img_")
    assert record["visibility"] == "public" and record["source"] == "upload"
    assert (record["content_type"], record["width"], record["height"]) == ("image/png", 40, 30)
    assert record["size_bytes"] == len(data)
    assert record["filename"] == "hero.png" and record["alias"] is None and record["expires_at"] is None
    assert record["url"] == f"{stack.url}/v1/i/{record['token']}.png"
    assert record["id"] not in record["token"] and len(record["token"]) >= 22
    assert record["sha256"] == hashlib.sha256(data).hexdigest()


def test_default_visibility_is_private(stack, owner):
    assert uploaded(stack, owner)["visibility"] == "private"


def test_png_named_gif_is_served_as_png_at_every_extension(stack, owner, http):
    data = factories.png()
    record = uploaded(stack, owner, data, filename="x.gif", visibility="public")
    assert record["content_type"] == "image/png"
    base = record["url"].rsplit(".", 1)[0]
    for suffix in (".png", ".gif", ".jpg", ".webp", ".svg", ".html"):
        response = http.get(base + suffix)
        assert response.status_code == 200, suffix
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.content == data


@pytest.mark.parametrize("maker,content_type", [
    (factories.png, "image/png"), (factories.jpeg, "image/jpeg"),
    (factories.webp, "image/webp"), (factories.gif, "image/gif"),
])
def test_each_accepted_format_round_trips_byte_identical(stack, owner, maker, content_type):
    data = maker()
    record = uploaded(stack, owner, data)
    response = requests.get(record["url"], headers=owner.headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.content == data


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_strip_metadata_stores_the_image_without_it(stack, owner, fmt):
    original = factories.image_with_metadata(fmt)
    record = uploaded(stack, owner, original, filename="photo", strip_metadata="true")
    served = requests.get(record["url"], headers=owner.headers).content

    assert factories.SECRET not in served and len(served) < len(original)
    assert record["sha256"] == hashlib.sha256(served).hexdigest() and record["size_bytes"] == len(served)
    with Image.open(io.BytesIO(served)) as stored, Image.open(io.BytesIO(original)) as sent:
        assert stored.convert("RGBA").tobytes() == sent.convert("RGBA").tobytes()


def test_strip_metadata_in_a_json_upload_and_off_by_default(stack, owner):
    original = factories.image_with_metadata("JPEG")
    body = {"data": base64.b64encode(original).decode(), "visibility": "public"}
    stripped = requests.post(f"{stack.url}/v1/images", headers=owner.headers, json={**body, "strip_metadata": True})
    kept = requests.post(f"{stack.url}/v1/images", headers=owner.headers, json=body)
    assert stripped.status_code == kept.status_code == 201

    assert factories.SECRET not in requests.get(stripped.json()["url"]).content
    assert requests.get(kept.json()["url"]).content == original


@pytest.mark.parametrize("kind,value", [("multipart", "yes"), ("json", "yes"), ("json", 2), ("json", [True])])
def test_a_bad_strip_metadata_is_400_and_stores_nothing(stack, owner, kind, value):
    before_blobs, before_rows = blob_files(stack), image_count(stack, owner)
    if kind == "multipart":
        response = upload(stack, owner, factories.png(), strip_metadata=value)
    else:
        body = {"data": base64.b64encode(factories.png()).decode(), "strip_metadata": value}
        response = requests.post(f"{stack.url}/v1/images", headers=owner.headers, json=body)
    assert response.status_code == 400 and error_code(response) == "invalid_request"
    assert (blob_files(stack), image_count(stack, owner)) == (before_blobs, before_rows)


@pytest.mark.parametrize("name,data", [
    ("svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'),
    ("pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"),
    ("html", b"<!doctype html><html><body><script>alert(1)</script></body></html>"),
    ("text", b"just some text"),
    ("empty", b""),
])
def test_non_images_are_415_and_leave_nothing(stack, owner, name, data):
    before_blobs, before_rows = blob_files(stack), image_count(stack, owner)
    response = upload(stack, owner, data, filename="evil.png")
    assert response.status_code == 415
    assert error_code(response) == "unsupported_image_type"
    assert blob_files(stack) == before_blobs and image_count(stack, owner) == before_rows


def test_truncated_png_is_422(stack, owner):
    data = factories.png((300, 300))
    response = upload(stack, owner, data[: len(data) // 2])
    assert response.status_code == 422 and error_code(response) == "invalid_image"


def _png_header_only(width, height):
    """A 1-bit PNG of the given size whose IDAT is a tiny zlib stream of zero rows (~100 KB for 30000²)."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_without_decoding(stack, owner):
    data = _png_header_only(30000, 30000)
    assert len(data) < 1_000_000
    response = upload(stack, owner, data)
    assert response.status_code == 422 and error_code(response) == "image_too_large_dimensions"


def test_image_over_the_upload_limit_is_413_from_the_app_naming_its_true_size(stack, owner):
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * (27_000_000 - 8)
    response = upload(stack, owner, data)
    assert response.status_code == 413 and error_code(response) == "image_too_large"
    limit = stack.settings.max_upload_bytes
    assert response.json()["error"]["message"] == f"The image is 27000000 bytes; the limit is {limit} bytes."


def test_body_over_nginx_limit_is_json_413(stack, owner):
    too_big = stack.settings.max_upload_bytes * 4 // 3 + 2 * 1024 * 1024
    response = requests.post(
        f"{stack.url}/v1/images", headers={**owner.headers, "Content-Type": "application/octet-stream"},
        data=b"\x00" * too_big,
    )
    assert response.status_code == 413
    assert error_code(response) == "image_too_large"
    assert response.headers["Server"] == "nginx"


def test_json_base64_upload(stack, owner):
    data = factories.webp()
    response = requests.post(
        f"{stack.url}/v1/images", headers=owner.headers,
        json={"data": base64.b64encode(data).decode(), "visibility": "public", "filename": "a.webp"},
    )
    assert response.status_code == 201, response.text
    assert requests.get(response.json()["url"]).content == data


@pytest.mark.one_mode
@pytest.mark.parametrize("body,slug", [
    ({"data": "not base64!!"}, "invalid_request"),
    ({"data": ""}, "invalid_request"),
    ({}, "invalid_request"),
    ({"data": base64.b64encode(b"GIF89a nope").decode()}, "invalid_image"),
    ({"data": base64.b64encode(b"%PDF-1.4").decode()}, "unsupported_image_type"),
    ({"data": "AAAA", "visibility": "secret"}, "invalid_request"),
    ({"data": "AAAA", "ttl_seconds": -5}, "invalid_request"),
    ({"data": "AAAA", "ttl_seconds": "soon"}, "invalid_request"),
    ({"data": "AAAA", "ttl_seconds": 60, "permanent": True}, "invalid_request"),
    ({"data": "AAAA", "alias": "@Not Valid"}, "invalid_request"),
])
def test_bad_json_uploads(stack, owner, body, slug):
    response = requests.post(f"{stack.url}/v1/images", headers=owner.headers, json=body)
    assert response.status_code in (400, 415, 422)
    assert error_code(response) == slug


@pytest.mark.one_mode
def test_multipart_without_file_is_400(stack, owner):
    response = requests.post(f"{stack.url}/v1/images", headers=owner.headers, files={"other": ("a", b"x")})
    assert response.status_code == 400 and error_code(response) == "invalid_request"


def test_identical_bytes_are_stored_once_and_kept_while_referenced(stack, owner, other_owner):
    data = factories.png()
    first = uploaded(stack, owner, data)
    second = uploaded(stack, other_owner, data)
    assert first["sha256"] == second["sha256"]
    assert blob_files(stack).count(first["sha256"]) == 1
    assert requests.delete(f"{stack.url}/v1/images/{first['id']}", headers=owner.headers).status_code == 204
    assert first["sha256"] in blob_files(stack)
    assert requests.get(second["url"], headers=other_owner.headers).content == data
    assert requests.delete(f"{stack.url}/v1/images/{second['id']}", headers=other_owner.headers).status_code == 204
    assert first["sha256"] not in blob_files(stack)


@pytest.mark.one_mode
def test_taken_filename_gets_a_suffix(stack, owner):
    a = uploaded(stack, owner, filename="logo.png")
    b = uploaded(stack, owner, filename="logo.png")
    assert a["filename"] == "logo.png" and b["filename"] != "logo.png" and b["filename"].endswith(".png")


@pytest.mark.one_mode
def test_filename_is_sanitised(stack, owner):
    record = uploaded(stack, owner, filename="../../etc/pa ss\r\nX-Injected: 1.png")
    assert "/" not in record["filename"] and "\n" not in record["filename"] and " " not in record["filename"]


# --- serving: visibility and credentials -----------------------------------


def test_private_image_access_matrix(stack, owner, other_owner, http):
    data = factories.png()
    record = uploaded(stack, owner, data)
    anonymous = http.get(record["url"])
    assert anonymous.status_code == 401 and error_code(anonymous) == "auth_required"
    other = http.get(record["url"], headers=other_owner.headers)
    assert other.status_code == 404 and error_code(other) == "image_not_found"
    mine = http.get(record["url"], headers=owner.headers)
    assert mine.status_code == 200 and mine.content == data
    assert mine.headers["Cache-Control"] == "private, no-store"


def test_public_image_has_bounded_public_cache_control(stack, owner, http):
    record = uploaded(stack, owner, visibility="public")
    response = http.get(record["url"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == f"public, max-age={stack.settings.public_max_age}"
    with_ttl = uploaded(stack, owner, visibility="public", ttl_seconds=120)
    max_age = int(http.get(with_ttl["url"]).headers["Cache-Control"].split("max-age=")[1])
    assert 110 <= max_age <= 120


@pytest.mark.parametrize("header", [
    "Bearer good_live_" + "x" * 40,
    "Bearer not-a-key",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
])
def test_wrong_or_malformed_key_is_401_never_anonymous(stack, owner, http, header):
    record = uploaded(stack, owner, visibility="public")
    served = http.get(record["url"], headers={"Authorization": header})
    assert served.status_code == 401 and error_code(served) == "invalid_api_key"
    listed = http.get(f"{stack.url}/v1/images", headers={"Authorization": header})
    assert listed.status_code == 401 and error_code(listed) == "invalid_api_key"


def test_revoked_key_is_401(stack, owner, http):
    record = uploaded(stack, owner)
    assert stack.admin("key", "revoke", owner.key_id).exit_code == 0
    assert error_code(http.get(f"{stack.url}/v1/images", headers=owner.headers)) == "invalid_api_key"
    assert http.get(record["url"], headers=owner.headers).status_code == 401


@pytest.mark.one_mode
def test_management_api_requires_credentials(stack, http):
    response = http.get(f"{stack.url}/v1/images")
    assert response.status_code == 401 and error_code(response) == "auth_required"


def test_other_projects_images_are_masked(stack, owner, other_owner, http):
    record = uploaded(stack, owner)
    for method, body in (("GET", None), ("PATCH", {"visibility": "public"}), ("DELETE", None)):
        response = http.request(method, f"{stack.url}/v1/images/{record['id']}", headers=other_owner.headers, json=body)
        assert response.status_code == 404 and error_code(response) == "image_not_found", method
    assert http.get(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers).json()["visibility"] == "private"


@pytest.mark.parametrize("path", [
    "/v1/i/../../../etc/passwd",
    "/v1/i/..%2f..%2f..%2fetc%2fpasswd",
    "/v1/i/%2e%2e/%2e%2e/etc/passwd",
    "/v1/i/....//....//etc/passwd.png",
    "/v1/i/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.png",
    "/v1/i/.png",
    "/v1/i/" + "A" * 300 + ".png",
    "/_goodeye/img_x~~/local/00/00/" + "0" * 64,
    "/v1/i/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%0A.png",
    "/v1/i/%0A",
])
def test_path_traversal_and_unknown_tokens_are_404(stack, http, path):
    session = requests.Session()
    request = requests.Request("GET", stack.url + "/").prepare()
    request.url = stack.url + path  # set after preparing so nothing normalises the dots
    response = session.send(request)
    # A path that climbs above the root is refused by nginx before any routing
    # (400 invalid_request); every other shape reaches no blob (404).
    assert (response.status_code, response.json()["error"]["code"]) in (
        (404, "image_not_found"), (404, "not_found"), (400, "invalid_request"),
    )
    assert b"root:" not in response.content


def test_head_conditional_and_range_requests(stack, owner, http):
    data = factories.png((200, 200))
    record = uploaded(stack, owner, data, visibility="public")
    head = http.head(record["url"])
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Type"] == "image/png" and int(head.headers["Content-Length"]) == len(data)
    etag = http.get(record["url"]).headers["ETag"]
    not_modified = http.get(record["url"], headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    ranged = http.get(record["url"], headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and ranged.content == data[:10]


# --- listing ----------------------------------------------------------------


@pytest.mark.one_mode
def test_list_filters_and_limits(stack, owner, http):
    public = uploaded(stack, owner, visibility="public")
    private = uploaded(stack, owner)
    listed = http.get(f"{stack.url}/v1/images?visibility=public", headers=owner.headers).json()["data"]
    ids = [r["id"] for r in listed]
    assert public["id"] in ids and private["id"] not in ids
    generated = http.get(f"{stack.url}/v1/images?source=generated", headers=owner.headers).json()
    assert generated == {"data": [], "next_cursor": None}
    for bad in ("limit=0", "limit=101", "limit=abc", "source=other", "visibility=secret", "cursor=@@@", "cursor=djE6eA"):
        response = http.get(f"{stack.url}/v1/images?{bad}", headers=owner.headers)
        assert response.status_code == 400 and error_code(response) == "invalid_request", bad


@pytest.mark.one_mode
def test_cursor_pagination_has_no_duplicates_or_gaps_while_images_are_added(stack, owner, http):
    originals = [uploaded(stack, owner)["id"] for _ in range(7)]
    seen, cursor = [], None
    while True:
        url = f"{stack.url}/v1/images?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = http.get(url, headers=owner.headers).json()
        seen.extend(r["id"] for r in page["data"])
        uploaded(stack, owner)  # a new image arrives between pages
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(originals))


# --- update: visibility, TTL, permanent, alias --------------------------------


def test_flip_visibility_keeps_the_url(stack, owner, http):
    record = uploaded(stack, owner)
    assert http.get(record["url"]).status_code == 401
    patched = http.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, json={"visibility": "public"})
    assert patched.status_code == 200 and patched.json()["url"] == record["url"]
    assert http.get(record["url"]).status_code == 200
    http.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, json={"visibility": "private"})
    assert http.get(record["url"]).status_code == 401


def test_ttl_expires_exactly_and_answers_404_on_the_next_request(stack, owner, http):
    record = uploaded(stack, owner, visibility="public", ttl_seconds=2)
    expires = parse_time(record["expires_at"])
    assert (expires - parse_time(record["created_at"])).total_seconds() == 2
    assert http.get(record["url"]).status_code == 200
    time.sleep(max(0, (expires - datetime.now(timezone.utc)).total_seconds()) + 0.05)
    response = http.get(record["url"])
    assert response.status_code == 404 and error_code(response) == "image_not_found"
    assert http.get(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers).status_code == 404


def test_ttl_counts_from_when_it_is_applied(stack, owner, http):
    record = uploaded(stack, owner, visibility="public")
    time.sleep(1.5)
    patched = http.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, json={"ttl_seconds": 2}).json()
    applied = parse_time(patched["updated_at"])
    assert (parse_time(patched["expires_at"]) - applied).total_seconds() == 2
    assert (parse_time(patched["expires_at"]) - parse_time(record["created_at"])).total_seconds() >= 3.5
    time.sleep(1)
    assert http.get(record["url"]).status_code == 200
    time.sleep(max(0, (parse_time(patched["expires_at"]) - datetime.now(timezone.utc)).total_seconds()) + 0.05)
    assert http.get(record["url"]).status_code == 404


@pytest.mark.parametrize("clear", [{"permanent": True}, {"ttl_seconds": None}])
def test_permanent_and_clearing_a_ttl_are_the_same_state(stack, owner, http, clear):
    record = uploaded(stack, owner, ttl_seconds=60)
    assert record["expires_at"] is not None
    patched = http.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, json=clear)
    assert patched.status_code == 200 and patched.json()["expires_at"] is None


@pytest.mark.one_mode
@pytest.mark.parametrize("body", [
    {"ttl_seconds": 60, "permanent": True},
    {"ttl_seconds": 0},
    {"ttl_seconds": 1.5},
    {"ttl_seconds": True},
    {"visibility": "everyone"},
    {"permanent": "maybe"},
    {"alias": "@UPPER"},
    {"color": "red"},
])
def test_bad_patches_are_400_and_change_nothing(stack, owner, http, body):
    record = uploaded(stack, owner)
    response = http.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, json=body)
    assert response.status_code == 400 and error_code(response) == "invalid_request"
    after = http.get(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers).json()
    assert after == record


@pytest.mark.one_mode
def test_patch_body_must_be_json_object(stack, owner, http):
    record = uploaded(stack, owner)
    response = http.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, data="[1,2]")
    assert response.status_code == 400 and error_code(response) == "invalid_request"


def test_alias_moves_to_the_image_that_sets_it(stack, owner, http):
    first = uploaded(stack, owner, alias="@hero")
    assert first["alias"] == "@hero"
    second = uploaded(stack, owner)
    moved = http.patch(f"{stack.url}/v1/images/{second['id']}", headers=owner.headers, json={"alias": "@hero"}).json()
    assert moved["alias"] == "@hero"
    assert http.get(f"{stack.url}/v1/images/{first['id']}", headers=owner.headers).json()["alias"] is None
    cleared = http.patch(f"{stack.url}/v1/images/{second['id']}", headers=owner.headers, json={"alias": None}).json()
    assert cleared["alias"] is None


# --- delete and the sweeper ------------------------------------------------


def test_delete_stops_the_url_at_once_and_reclaims_storage(stack, owner, http):
    record = uploaded(stack, owner, visibility="public")
    assert http.get(record["url"]).status_code == 200
    assert http.delete(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers).status_code == 204
    response = http.get(record["url"])
    assert response.status_code == 404 and error_code(response) == "image_not_found"
    assert record["sha256"] not in blob_files(stack)
    again = http.delete(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers)
    assert again.status_code == 404


def test_sweeper_purges_expired_records_and_their_blobs(stack, owner, http):
    record = uploaded(stack, owner, ttl_seconds=1)
    time.sleep(1.2)
    result = stack.admin("sweep", "--json")
    assert result.exit_code == 0
    assert record["sha256"] in blob_files(stack)  # still within the grace period
    stack.env["GOODEYE_EXPIRED_GRACE_SECONDS"] = "0"
    try:
        assert stack.admin("sweep", "--json").exit_code == 0
    finally:
        del stack.env["GOODEYE_EXPIRED_GRACE_SECONDS"]
    assert record["sha256"] not in blob_files(stack)


def test_sweeper_reclaims_orphan_blobs_after_the_grace(stack):
    orphan = "abcd" + "0" * 60
    stack.storage.put(orphan, b"left by a crash between write and commit", "image/png")
    assert orphan in blob_files(stack)
    stack.env["GOODEYE_ORPHAN_GRACE_SECONDS"] = "0"
    try:
        result = stack.admin("sweep", "--json")
    finally:
        del stack.env["GOODEYE_ORPHAN_GRACE_SECONDS"]
    assert result.exit_code == 0
    assert orphan not in blob_files(stack)


# --- health ---------------------------------------------------------------


def test_health_and_readiness(stack, http):
    assert http.get(f"{stack.url}/healthz").json() == {"status": "ok"}
    ready = http.get(f"{stack.url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


@pytest.mark.one_mode
def test_unknown_endpoint_is_json_404(stack, http):
    response = http.get(f"{stack.url}/v1/nothing-here")
    assert response.status_code == 404 and error_code(response) == "not_found"
    assert http.put(f"{stack.url}/v1/images", json={}).status_code == 405


def test_deleting_one_of_two_images_with_the_same_bytes_stops_only_its_url(stack, owner, http):
    data = factories.png()
    first = uploaded(stack, owner, data, visibility="public")
    second = uploaded(stack, owner, data, visibility="public")
    assert http.get(first["url"]).status_code == 200 and http.get(second["url"]).status_code == 200
    assert http.delete(f"{stack.url}/v1/images/{first['id']}", headers=owner.headers).status_code == 204
    # nginx may still hold the decision that served it a moment ago; the URL must not resolve anyway.
    assert http.get(first["url"]).status_code == 404
    assert http.get(second["url"]).content == data


def test_a_just_served_public_image_made_private_is_refused_at_once(stack, owner, http):
    record = uploaded(stack, owner, visibility="public")
    for _ in range(3):
        assert http.get(record["url"]).status_code == 200
    http.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, json={"visibility": "private"})
    assert http.get(record["url"]).status_code == 401
    assert http.get(record["url"], headers=owner.headers).status_code == 200


@pytest.mark.one_mode
@pytest.mark.parametrize("suffix", ["..%2Fimages", "img_x%2F..%2F..%2Fhealthz", "%2e%2e", "img_" + "a" * 80, "img_x%0A", "img_x/%0Ay"])
def test_traversal_in_the_image_id_is_404(stack, owner, http, suffix):
    for method in ("GET", "PATCH", "DELETE"):
        response = http.request(method, f"{stack.url}/v1/images/{suffix}", headers=owner.headers, json={})
        assert (response.status_code, error_code(response)) in ((404, "image_not_found"), (400, "invalid_request")), method


def test_a_request_line_over_8k_is_a_json_414(stack, owner):
    response = requests.get(f"{stack.url}/v1/images?cursor={'a' * 9000}", headers=owner.headers)
    assert response.status_code == 414 and error_code(response) == "invalid_request"


def test_a_serving_url_with_a_newline_after_it_is_not_the_image(stack, owner, http):
    record = uploaded(stack, owner, visibility="public")
    assert http.get(record["url"]).status_code == 200
    base = record["url"].rsplit(".", 1)[0]
    # A newline in the token part; the extension is cosmetic (anything after the dot is ignored).
    for url in (base + "%0A", base + "%0A.png"):
        response = http.get(url)
        assert (response.status_code, error_code(response)) == (404, "image_not_found"), url


def test_a_new_ttl_bounds_cache_control_on_the_very_next_request(stack, owner, http):
    record = uploaded(stack, owner, visibility="public")
    assert http.get(record["url"]).headers["Cache-Control"] == "public, max-age=3600"  # a decision nginx keeps
    patched = http.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, json={"ttl_seconds": 30})
    assert patched.status_code == 200
    assert int(http.get(record["url"]).headers["Cache-Control"].removeprefix("public, max-age=")) <= 30
    cleared = http.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, json={"permanent": True})
    assert cleared.status_code == 200
    assert http.get(record["url"]).headers["Cache-Control"] == "public, max-age=3600"


@pytest.mark.one_mode
@pytest.mark.parametrize("query", [
    "limit=%C2%B2",                    # a digit to str.isdigit(), not to int()
    "limit=" + "9" * 4400,             # past Python's int() digit limit
    "cursor=" + base64.urlsafe_b64encode(b"v1:99999999999999999999").decode(),  # past a 64-bit key
])
def test_numbers_no_integer_holds_are_400(stack, owner, query):
    response = requests.get(f"{stack.url}/v1/images?{query}", headers=owner.headers)
    assert (response.status_code, error_code(response)) == (400, "invalid_request")


def test_a_ttl_of_thousands_of_digits_is_400_and_stores_nothing(stack, owner):
    before_blobs, before_rows = blob_files(stack), image_count(stack, owner)
    response = upload(stack, owner, factories.png(), ttl_seconds="9" * 4400)
    assert (response.status_code, error_code(response)) == (400, "invalid_request")
    assert (blob_files(stack), image_count(stack, owner)) == (before_blobs, before_rows)


@pytest.mark.one_mode
def test_a_body_nested_deeper_than_the_json_parser_goes_is_400(stack, owner):
    body = "[" * 100000 + "]" * 100000
    record = uploaded(stack, owner)
    response = requests.patch(f"{stack.url}/v1/images/{record['id']}", headers={**owner.headers, "Content-Type": "application/json"},
                              data=body)
    assert (response.status_code, error_code(response)) == (400, "invalid_request")


def test_other_methods_on_a_serving_url_are_a_json_405(stack, owner, http):
    public = uploaded(stack, owner, visibility="public")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = http.request(method, public["url"])
        assert (response.status_code, error_code(response)) == (405, "method_not_allowed"), method
        assert response.headers["Allow"]
    assert http.get(public["url"]).status_code == 200
