"""`/cdn/{org}/{project}/img/{filename|@alias}`, end to end, in both serving modes."""

import pytest
import requests

from tests import factories
from tests.live_helpers import error_code


def upload(stack, owner, data=None, **fields):
    """Upload an image and return its record, asserting 201."""
    response = requests.post(
        f"{stack.url}/v1/images",
        headers=owner.headers,
        files={"file": (fields.pop("filename", "image.png"), data or factories.png(), "application/octet-stream")},
        data={key: str(value) for key, value in fields.items()},
    )
    assert response.status_code == 201, response.text
    return response.json()


def cdn(stack, owner, name, **kwargs):
    return requests.get(f"{stack.url}/cdn/{owner.project}/img/{name}", **kwargs)


def test_public_images_are_served_by_filename_and_by_alias(stack, owner):
    data = factories.jpeg((80, 60))
    record = upload(stack, owner, data, filename="hero-background.jpg", visibility="public", alias="@hero")
    for name in ("hero-background.jpg", "@hero"):
        response = cdn(stack, owner, name)
        assert response.status_code == 200
        assert response.content == data
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.headers["Content-Length"] == str(len(data))
        assert response.headers["Cache-Control"] == "public, max-age=31536000"
        assert response.headers["X-Image-Id"] == record["id"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_ttl_bounds_the_cache_lifetime(stack, owner):
    upload(stack, owner, filename="brief.png", visibility="public", ttl_seconds=600)
    max_age = int(cdn(stack, owner, "brief.png").headers["Cache-Control"].removeprefix("public, max-age="))
    assert 590 <= max_age <= 600


def test_an_alias_follows_the_image_that_holds_it(stack, owner):
    first = upload(stack, owner, filename="a.png", visibility="public", alias="@banner")
    second = upload(stack, owner, filename="b.png", visibility="public")
    assert cdn(stack, owner, "@banner").headers["X-Image-Id"] == first["id"]
    moved = requests.patch(f"{stack.url}/v1/images/{second['id']}", headers=owner.headers, json={"alias": "@banner"})
    assert moved.status_code == 200
    assert cdn(stack, owner, "@banner").headers["X-Image-Id"] == second["id"]


def test_conditional_requests_are_answered(stack, owner):
    upload(stack, owner, filename="etag.png", visibility="public")
    etag = cdn(stack, owner, "etag.png").headers["ETag"]
    assert cdn(stack, owner, "etag.png", headers={"If-None-Match": etag}).status_code == 304


def test_private_missing_and_malformed_names_are_not_found(stack, owner, other_owner):
    upload(stack, owner, filename="secret.png", visibility="private", alias="@secret")
    upload(stack, other_owner, filename="theirs.png", visibility="public")
    for name in ("secret.png", "@secret", "nothing.png", "@nothing", "@Not-An-Alias!", "theirs.png", "a%0Ab.png", "a/b%0A"):
        response = cdn(stack, owner, name)
        assert response.status_code == 404, name
        assert error_code(response) == "IMAGE_NOT_FOUND"
    # Owner credentials change nothing: the CDN serves public images only.
    assert cdn(stack, owner, "secret.png", headers=owner.headers).status_code == 404


def test_a_public_alias_or_filename_with_a_newline_after_it_is_not_found(stack, owner):
    upload(stack, owner, filename="logo.png", visibility="public", alias="@logo")
    assert cdn(stack, owner, "@logo").status_code == 200
    for name in ("@logo%0A", "logo.png%0A"):
        response = cdn(stack, owner, name)
        assert response.status_code == 404 and error_code(response) == "IMAGE_NOT_FOUND", name


def test_making_an_image_private_takes_it_off_the_cdn_at_once(stack, owner):
    record = upload(stack, owner, filename="flip.png", visibility="public")
    assert cdn(stack, owner, "flip.png").status_code == 200
    requests.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, json={"visibility": "private"})
    assert cdn(stack, owner, "flip.png").status_code == 404


@pytest.mark.one_mode
@pytest.mark.parametrize("path, code", [("no-such-org/proj", "ORG_NOT_FOUND"), ("{org}/no-such-project", "PROJECT_NOT_FOUND")])
def test_unknown_org_or_project(stack, owner, path, code):
    path = path.format(org=owner.project.split("/")[0])
    response = requests.get(f"{stack.url}/cdn/{path}/img/x.png")
    assert response.status_code == 404
    assert error_code(response) == code


def test_a_deleted_image_stops_resolving(stack, owner):
    record = upload(stack, owner, filename="gone.png", visibility="public")
    assert requests.delete(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers).status_code == 204
    assert error_code(cdn(stack, owner, "gone.png")) == "IMAGE_NOT_FOUND"


def test_a_request_line_over_8k_is_a_json_414(stack, owner):
    response = cdn(stack, owner, "a" * 9000 + ".png")
    # nginx refuses it before reading the path, so it cannot tell the family: the /v1 envelope.
    assert response.status_code == 414 and response.json() == {
        "error": {"code": "invalid_request", "message": "The request line is too long."}
    }


def test_a_new_ttl_bounds_cache_control_on_the_very_next_request(stack, owner):
    record = upload(stack, owner, filename="soon.png", visibility="public")
    assert cdn(stack, owner, "soon.png").headers["Cache-Control"] == "public, max-age=31536000"
    patched = requests.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, json={"ttl_seconds": 30})
    assert patched.status_code == 200
    assert int(cdn(stack, owner, "soon.png").headers["Cache-Control"].removeprefix("public, max-age=")) <= 30


@pytest.mark.parametrize("header", ["Bearer good_live_" + "x" * 40, "Bearer not-a-key", "Basic dXNlcjpwYXNz"])
def test_a_wrong_key_on_the_cdn_is_401_never_anonymous(stack, owner, header):
    upload(stack, owner, filename="open.png", visibility="public")
    for name in ("open.png", "@nothing"):
        refused = cdn(stack, owner, name, headers={"Authorization": header})
        assert refused.status_code == 401 and error_code(refused) == "INVALID_API_KEY", name
    live = requests.get(f"{stack.url}/cdn/{owner.project}/live/s1", params={"prompt": "x"}, headers={"Authorization": header})
    assert live.status_code == 401 and error_code(live) == "INVALID_API_KEY"
    # The owner's own key changes nothing: the CDN serves public images to anyone.
    assert cdn(stack, owner, "open.png", headers=owner.headers).status_code == 200


def test_a_blank_authorization_header_is_anonymous_on_every_path(stack, owner):
    record = upload(stack, owner, filename="blank.png", visibility="public")
    for url in (record["url"], f"{stack.url}/cdn/{owner.project}/img/blank.png"):
        assert requests.get(url, headers={"Authorization": ""}).status_code == 200, url
    refused = requests.get(f"{stack.url}/v1/images", headers={"Authorization": ""})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "auth_required"
