"""The scopes API, `/api/v1/live` and `/api/v1/project`, end to end through nginx on MySQL."""

import hashlib
import os

import pytest
import requests

from goodeye.db import make_database
from goodeye.models import PromptUrlCache
from tests import factories
from tests.live_helpers import (
    api,
    error_code,
    generated_images,
    live_get,
    new_scope_slug,
    scope_of,
    start_live_stack,
    unique,
)


@pytest.fixture(scope="module")
def scope_stack(stack_root, mysql_databases, database_kind):
    running = start_live_stack(stack_root, mysql_databases, database_kind)
    yield running
    running.stack.stop()


@pytest.fixture()
def scope_owner(scope_stack):
    return scope_stack.new_owner()


def blob_path(stack, sha256):
    return os.path.join(stack.data_dir, "blobs", sha256[:2], sha256[2:4], sha256)


def image_record(stack, owner, image_id):
    return requests.get(f"{stack.url}/v1/images/{image_id}", headers=owner.headers)


# --- authentication ----------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/live/scopes"),
        ("POST", "/live/scopes"),
        ("GET", "/live/scopes/any"),
        ("PUT", "/live/scopes/any"),
        ("DELETE", "/live/scopes/any"),
        ("POST", "/live/scopes/any/regenerate"),
        ("GET", "/live?prompt=x"),
        ("GET", "/project"),
        ("PATCH", "/project"),
    ],
)
def test_the_api_needs_a_valid_project_key(scope_stack, method, path):
    url = f"{scope_stack.url}/api/v1{path}"
    anonymous = requests.request(method, url, json={})
    assert anonymous.status_code == 401 and error_code(anonymous) == "UNAUTHORIZED"
    for headers in ({"Authorization": "Bearer good_live_" + "x" * 40}, {"X-API-Key": "nonsense"}, {"Authorization": "Basic abc"}):
        wrong = requests.request(method, url, json={}, headers=headers)
        assert wrong.status_code == 401 and error_code(wrong) == "INVALID_API_KEY"


def test_x_api_key_is_accepted(scope_stack, scope_owner):
    response = requests.get(f"{scope_stack.url}/api/v1/live/scopes", headers={"X-API-Key": scope_owner.key})
    assert response.status_code == 200


# --- create, list, get, update --------------------------------------------------------


def test_create_returns_the_scope_with_defaults(scope_stack, scope_owner):
    created = api(scope_stack, scope_owner, "POST", "/live/scopes", json={"slug": "hero-section"})
    assert created.status_code == 201
    data = created.json()["data"]
    assert data["slug"] == "hero-section" and data["id"]
    assert (data["allowNewGenerations"], data["newGenerationsLimit"], data["currentGenerations"]) == (True, 30, 0)
    assert data["lastGeneratedAt"] is None and data["meta"] == {}
    project = api(scope_stack, scope_owner, "GET", "/project").json()["data"]
    assert data["projectId"] == project["id"]


def test_create_with_settings_and_a_taken_slug(scope_stack, scope_owner):
    body = {"slug": "hero", "allowNewGenerations": False, "newGenerationsLimit": 50, "meta": {"description": "Hero section images"}}
    data = api(scope_stack, scope_owner, "POST", "/live/scopes", json=body).json()["data"]
    assert (data["allowNewGenerations"], data["newGenerationsLimit"], data["meta"]) == (False, 50, body["meta"])
    again = api(scope_stack, scope_owner, "POST", "/live/scopes", json={"slug": "hero"})
    assert again.status_code == 409 and error_code(again) == "SCOPE_ALREADY_EXISTS"
    # Slugs are per project.
    other = scope_stack.new_owner()
    assert api(scope_stack, other, "POST", "/live/scopes", json={"slug": "hero"}).status_code == 201


@pytest.mark.parametrize(
    "body, code",
    [
        ({"slug": "has space"}, "SCOPE_INVALID_FORMAT"),
        ({"slug": "newline\n"}, "SCOPE_INVALID_FORMAT"),
        ({"slug": "x" * 65}, "SCOPE_INVALID_FORMAT"),
        ({"slug": ""}, "SCOPE_INVALID_FORMAT"),
        ({"slug": 7}, "SCOPE_INVALID_FORMAT"),
        ({}, "VALIDATION_ERROR"),
        ({"slug": "ok", "allowNewGenerations": "yes"}, "VALIDATION_ERROR"),
        ({"slug": "ok", "newGenerationsLimit": -1}, "VALIDATION_ERROR"),
        ({"slug": "ok", "newGenerationsLimit": 1.5}, "VALIDATION_ERROR"),
        ({"slug": "ok", "newGenerationsLimit": True}, "VALIDATION_ERROR"),
        ({"slug": "ok", "meta": []}, "VALIDATION_ERROR"),
        ({"slug": "ok", "meta": {"big": "x" * 17000}}, "VALIDATION_ERROR"),
        ({"slug": "ok", "colour": "red"}, "VALIDATION_ERROR"),
    ],
)
def test_bad_create_bodies_are_refused(scope_stack, scope_owner, body, code):
    response = api(scope_stack, scope_owner, "POST", "/live/scopes", json=body)
    assert response.status_code == 400 and error_code(response) == code
    assert api(scope_stack, scope_owner, "GET", "/live/scopes").json()["pagination"]["total"] == 0


def test_a_body_that_is_not_a_json_object_is_refused(scope_stack, scope_owner):
    response = api(scope_stack, scope_owner, "POST", "/live/scopes", data="slug=x")
    assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"


def test_list_pages_with_a_total_and_filters_by_slug(scope_stack, scope_owner):
    slugs = [f"s{index}" for index in range(5)]
    for slug in slugs:
        assert api(scope_stack, scope_owner, "POST", "/live/scopes", json={"slug": slug}).status_code == 201
    first = api(scope_stack, scope_owner, "GET", "/live/scopes", params={"limit": 2}).json()
    assert [scope["slug"] for scope in first["data"]] == slugs[:2]
    assert first["pagination"] == {"limit": 2, "offset": 0, "total": 5, "hasMore": True}
    last = api(scope_stack, scope_owner, "GET", "/live/scopes", params={"limit": 2, "offset": 4}).json()
    assert [scope["slug"] for scope in last["data"]] == slugs[4:]
    assert last["pagination"] == {"limit": 2, "offset": 4, "total": 5, "hasMore": False}
    filtered = api(scope_stack, scope_owner, "GET", "/live/scopes", params={"slug": "s3"}).json()
    assert [scope["slug"] for scope in filtered["data"]] == ["s3"] and filtered["pagination"]["total"] == 1
    assert scope_stack.new_owner() and api(scope_stack, scope_stack.new_owner(), "GET", "/live/scopes").json()["data"] == []


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"offset": -1}])
def test_bad_list_parameters_are_refused(scope_stack, scope_owner, params):
    response = api(scope_stack, scope_owner, "GET", "/live/scopes", params=params)
    assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"


def test_get_and_update_a_scope(scope_stack, scope_owner):
    api(scope_stack, scope_owner, "POST", "/live/scopes", json={"slug": "cards", "meta": {"a": 1}})
    updated = api(scope_stack, scope_owner, "PUT", "/live/scopes/cards", json={"newGenerationsLimit": 100, "meta": {"description": "Updated"}})
    assert updated.status_code == 200
    data = updated.json()["data"]
    assert (data["newGenerationsLimit"], data["meta"], data["allowNewGenerations"]) == (100, {"description": "Updated"}, True)
    assert scope_of(scope_stack, scope_owner, "cards") == data
    for body in ({"slug": "renamed"}, {"allowNewGenerations": 0}, {"unknown": 1}):
        refused = api(scope_stack, scope_owner, "PUT", "/live/scopes/cards", json=body)
        assert refused.status_code == 400 and error_code(refused) == "VALIDATION_ERROR"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_and_malformed_scopes(scope_stack, scope_owner, method):
    missing = api(scope_stack, scope_owner, method, "/live/scopes/nope", json={})
    assert missing.status_code == 404 and error_code(missing) == "SCOPE_NOT_FOUND"
    malformed = api(scope_stack, scope_owner, method, "/live/scopes/bad.slug", json={})
    assert malformed.status_code == 400 and error_code(malformed) == "SCOPE_INVALID_FORMAT"
    # Another project's scope is not there for this key.
    other = scope_stack.new_owner()
    api(scope_stack, other, "POST", "/live/scopes", json={"slug": "theirs"})
    assert error_code(api(scope_stack, scope_owner, method, "/live/scopes/theirs", json={})) == "SCOPE_NOT_FOUND"


# --- delete -------------------------------------------------------------------------------


def test_delete_removes_the_scopes_images_and_blobs_except_aliased_ones(scope_stack, scope_owner):
    scope = new_scope_slug()
    prompts = [unique(f"delete me {index}") for index in range(3)]
    served = [live_get(scope_stack, scope_owner.project, scope, prompt) for prompt in prompts]
    ids = [response.headers["X-Image-Id"] for response in served]
    records = [image_record(scope_stack, scope_owner, image_id).json() for image_id in ids]
    # Image 0 keeps an alias; image 1's bytes are shared with an upload; image 2 is alone.
    assert requests.patch(f"{scope_stack.url}/v1/images/{ids[0]}", headers=scope_owner.headers, json={"alias": "@keeper"}).status_code == 200
    shared = requests.post(
        f"{scope_stack.url}/v1/images", headers=scope_owner.headers, files={"file": ("copy.jpg", served[1].content, "image/jpeg")}
    )
    assert shared.status_code == 201
    # HITs, whose decisions nginx keeps: the delete must reach the next request all the same.
    for prompt in prompts:
        assert live_get(scope_stack, scope_owner.project, scope, prompt).headers["X-Cache-Status"] == "HIT"

    deleted = api(scope_stack, scope_owner, "DELETE", f"/live/scopes/{scope}")
    assert deleted.status_code == 200
    assert deleted.json()["data"] == {"slug": scope, "deletedImages": 2, "keptImages": 1}

    assert error_code(api(scope_stack, scope_owner, "GET", f"/live/scopes/{scope}")) == "SCOPE_NOT_FOUND"
    assert image_record(scope_stack, scope_owner, ids[0]).status_code == 200
    for image_id in ids[1:]:
        assert image_record(scope_stack, scope_owner, image_id).status_code == 404
    assert os.path.exists(blob_path(scope_stack, records[0]["sha256"]))
    assert os.path.exists(blob_path(scope_stack, records[1]["sha256"]))
    assert not os.path.exists(blob_path(scope_stack, records[2]["sha256"]))
    assert requests.get(shared.json()["url"], headers=scope_owner.headers).content == served[1].content
    kept = requests.get(f"{scope_stack.url}/cdn/{scope_owner.project}/img/@keeper")
    assert kept.status_code == 200 and kept.content == served[0].content

    # The scope's live URLs start afresh in a new scope of the same name.
    again = live_get(scope_stack, scope_owner.project, scope, prompts[0])
    assert again.headers["X-Cache-Status"] == "MISS" and again.headers["X-Image-Id"] not in ids
    assert scope_of(scope_stack, scope_owner, scope)["currentGenerations"] == 1


# --- regenerate ---------------------------------------------------------------------------


def test_regenerate_one_image_keeps_its_id_and_url_and_changes_its_bytes(scope_stack, scope_owner):
    scope = new_scope_slug()
    prompts = [unique("regenerate me"), unique("leave me")]
    first = [live_get(scope_stack, scope_owner.project, scope, prompt, aspectRatio="16:9") for prompt in prompts]
    target, other = (response.headers["X-Image-Id"] for response in first)
    before = image_record(scope_stack, scope_owner, target).json()
    hit_before = live_get(scope_stack, scope_owner.project, scope, prompts[0], aspectRatio="16:9")

    response = api(scope_stack, scope_owner, "POST", f"/live/scopes/{scope}/regenerate", json={"imageId": target})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"regenerated": 1, "imageIds": [target]}

    after = image_record(scope_stack, scope_owner, target).json()
    assert (after["id"], after["token"], after["url"], after["filename"]) == (before["id"], before["token"], before["url"], before["filename"])
    assert after["sha256"] != before["sha256"]
    assert (after["width"], after["height"]) == (before["width"], before["height"])
    hit = live_get(scope_stack, scope_owner.project, scope, prompts[0], aspectRatio="16:9")
    assert hit.headers["X-Cache-Status"] == "HIT" and hit.headers["X-Image-Id"] == target
    assert hit.content != first[0].content and hashlib.sha256(hit.content).hexdigest() == after["sha256"]
    assert hit.headers["ETag"] != hit_before.headers["ETag"]
    assert requests.get(after["url"], headers=scope_owner.headers).content == hit.content
    assert requests.get(after["url"]).content == hit.content  # nginx's fast path follows the new bytes
    assert not os.path.exists(blob_path(scope_stack, before["sha256"]))
    assert live_get(scope_stack, scope_owner.project, scope, prompts[1], aspectRatio="16:9").content == first[1].content
    # Replacing images adds none: the budget and the image count stay.
    assert scope_of(scope_stack, scope_owner, scope)["currentGenerations"] == 2
    assert sorted(image["id"] for image in generated_images(scope_stack, scope_owner)) == sorted([target, other])


def test_regenerate_every_image_of_a_scope(scope_stack, scope_owner):
    scope = new_scope_slug()
    first = [live_get(scope_stack, scope_owner.project, scope, unique("all of us")) for _ in range(2)]
    ids = [response.headers["X-Image-Id"] for response in first]
    response = api(scope_stack, scope_owner, "POST", f"/live/scopes/{scope}/regenerate")
    assert response.status_code == 200
    assert sorted(response.json()["data"]["imageIds"]) == sorted(ids) and response.json()["data"]["regenerated"] == 2
    for image_id, old in zip(ids, first):
        assert hashlib.sha256(old.content).hexdigest() != image_record(scope_stack, scope_owner, image_id).json()["sha256"]


@pytest.fixture(scope="module")
def failing_twin(stack_root, mysql_databases, database_kind, scope_stack):
    """A second node on scope_stack's database and blobs whose upload limit no generated image fits."""
    running = start_live_stack(stack_root, mysql_databases, database_kind, database_url=scope_stack.settings.database,
                               GOODEYE_MAX_UPLOAD_BYTES=2000)
    os.rmdir(running.settings.blob_dir)
    os.symlink(scope_stack.settings.blob_dir, running.settings.blob_dir)
    yield running
    running.stack.stop()


def test_a_failed_regeneration_changes_nothing(scope_stack, scope_owner, failing_twin):
    scope = new_scope_slug()
    first = [live_get(scope_stack, scope_owner.project, scope, unique("keep me as I am")) for _ in range(2)]
    ids = [response.headers["X-Image-Id"] for response in first]
    before = [image_record(scope_stack, scope_owner, image_id).json() for image_id in ids]
    blobs_before = scope_stack.blob_keys()

    response = api(failing_twin, scope_owner, "POST", f"/live/scopes/{scope}/regenerate")
    assert response.status_code == 502 and error_code(response) == "GENERATION_FAILED"

    assert [image_record(scope_stack, scope_owner, image_id).json() for image_id in ids] == before
    for record, old in zip(before, first):
        assert requests.get(record["url"]).content == old.content
    assert scope_stack.blob_keys() == blobs_before
    assert scope_of(scope_stack, scope_owner, scope)["currentGenerations"] == 2
    assert sorted(image["id"] for image in generated_images(scope_stack, scope_owner)) == sorted(ids)


def test_regenerate_refuses_unknown_scopes_and_foreign_images(scope_stack, scope_owner):
    missing = api(scope_stack, scope_owner, "POST", "/live/scopes/nope/regenerate", json={})
    assert missing.status_code == 404 and error_code(missing) == "SCOPE_NOT_FOUND"
    scope = new_scope_slug()
    live_get(scope_stack, scope_owner.project, scope, unique("mine"))
    uploaded = requests.post(f"{scope_stack.url}/v1/images", headers=scope_owner.headers, files={"file": ("u.png", factories.png())})
    for image_id in (uploaded.json()["id"], "img_doesnotexist"):
        refused = api(scope_stack, scope_owner, "POST", f"/live/scopes/{scope}/regenerate", json={"imageId": image_id})
        assert refused.status_code == 404 and error_code(refused) == "IMAGE_NOT_FOUND"
    for body in ({"imageId": 5}, {"other": 1}):
        refused = api(scope_stack, scope_owner, "POST", f"/live/scopes/{scope}/regenerate", json=body)
        assert refused.status_code == 400 and error_code(refused) == "VALIDATION_ERROR"


@pytest.mark.parametrize("query", ["limit=%C2%B2", "offset=" + "9" * 4400])
def test_page_numbers_no_integer_holds_are_400(scope_stack, scope_owner, query):
    response = api(scope_stack, scope_owner, "GET", f"/live/scopes?{query}")
    assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"


def test_a_lone_surrogate_in_a_body_is_400(scope_stack, scope_owner):
    scope = new_scope_slug()
    live_get(scope_stack, scope_owner.project, scope, unique("surrogate"))
    response = requests.post(f"{scope_stack.url}/api/v1/live/scopes/{scope}/regenerate", data=r'{"imageId": "\ud800"}',
                             headers={**scope_owner.headers, "Content-Type": "application/json"})
    assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"


# --- GET /api/v1/live -------------------------------------------------------------------------


def test_the_prompt_cache_generates_once_and_counts_hits(scope_stack, scope_owner):
    prompt = unique("a prompt for the API")
    first = api(scope_stack, scope_owner, "GET", "/live", params={"prompt": prompt})
    assert first.status_code == 200, first.text
    assert first.headers["X-Cache-Status"] == "MISS" and "X-Cache-Hit-Count" not in first.headers
    data = first.json()["data"]
    assert data["prompt"] == prompt and data["hitCount"] == 0 and data["imageId"].startswith("img_")
    assert requests.get(data["url"]).status_code == 200  # public, so it can be embedded

    for count in (1, 2):
        hit = requests.get(f"{scope_stack.url}/api/v1/live", params={"prompt": prompt}, headers={"X-API-Key": scope_owner.key})
        assert hit.headers["X-Cache-Status"] == "HIT" and hit.headers["X-Cache-Hit-Count"] == str(count)
        assert hit.json()["data"]["imageId"] == data["imageId"] and hit.json()["data"]["hitCount"] == count
        assert hit.json()["data"]["lastAccessedAt"] >= data["lastAccessedAt"]
    assert [image["id"] for image in generated_images(scope_stack, scope_owner)] == [data["imageId"]]

    database = make_database(scope_stack.settings.database)
    with database.bind_ctx([PromptUrlCache]):
        rows = list(PromptUrlCache.select().where(PromptUrlCache.prompt_hash == hashlib.sha256(prompt.encode()).hexdigest()))
    database.close()
    assert [row.hit_count for row in rows] == [2]

    other = scope_stack.new_owner()
    theirs = api(scope_stack, other, "GET", "/live", params={"prompt": prompt})
    assert theirs.headers["X-Cache-Status"] == "MISS" and theirs.json()["data"]["imageId"] != data["imageId"]


@pytest.mark.parametrize("params", [{}, {"prompt": ""}, {"prompt": "x" * 2001}])
def test_the_prompt_cache_refuses_bad_prompts(scope_stack, scope_owner, params):
    response = api(scope_stack, scope_owner, "GET", "/live", params=params)
    assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"


# --- /api/v1/project ----------------------------------------------------------------------------


def test_project_settings_by_key_and_by_the_admin_command(scope_stack, scope_owner):
    org, slug = scope_owner.project.split("/")
    project = api(scope_stack, scope_owner, "GET", "/project").json()["data"]
    assert (project["org"], project["slug"], project["allowNewLiveScopes"]) == (org, slug, True)
    patched = api(scope_stack, scope_owner, "PATCH", "/project", json={"allowNewLiveScopes": False})
    assert patched.status_code == 200 and patched.json()["data"]["allowNewLiveScopes"] is False
    assert api(scope_stack, scope_owner, "GET", "/project").json()["data"]["allowNewLiveScopes"] is False

    result = scope_stack.admin("project", "update", scope_owner.project, "--live-scopes", "--json")
    assert result.exit_code == 0, result.output
    assert api(scope_stack, scope_owner, "GET", "/project").json()["data"]["allowNewLiveScopes"] is True
    result = scope_stack.admin("project", "update", scope_owner.project, "--no-live-scopes")
    assert result.exit_code == 0 and "disabled" in result.output
    assert api(scope_stack, scope_owner, "GET", "/project").json()["data"]["allowNewLiveScopes"] is False
    assert scope_stack.admin("project", "update", "no-such/project", "--live-scopes").exit_code != 0


@pytest.mark.parametrize("body", [{"allowNewLiveScopes": "no"}, {"name": "x"}, [1]])
def test_bad_project_patches_are_refused(scope_stack, scope_owner, body):
    response = api(scope_stack, scope_owner, "PATCH", "/project", json=body)
    assert response.status_code == 400 and error_code(response) == "VALIDATION_ERROR"
    assert api(scope_stack, scope_owner, "GET", "/project").json()["data"]["allowNewLiveScopes"] is True
