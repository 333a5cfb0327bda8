"""Similar images and the blocklist end to end, through nginx + gunicorn.

One stack for the module (the blocklist is the whole deployment's, so it must
not reach other modules' stacks), with the `openai` generator pointed at a fake
provider whose outputs are scenes this module chooses.
"""

import base64
import json

import pytest
import requests
from click.testing import CliRunner

from goodeye.cli import main as cli_main
from goodeye.db import make_database
from goodeye.models import Generation, Image
from tests.conftest import start_stack
from tests.fake_openai import FakeOpenAI
from tests.similar_helpers import near_duplicates, noise, scene

BLOCKED_SCENE = 500


class SceneFake(FakeOpenAI):
    """A fake provider whose output i is the picture `outputs[i]` (default: a scene of its own)."""

    outputs = {}

    def image_bytes(self, index):
        return self.outputs.get(index) or scene(1000 + index)


@pytest.fixture(scope="module")
def fake():
    with SceneFake(mode="b64_json") as server:
        yield server


@pytest.fixture(scope="module")
def similar_stack(fake, stack_root, mysql_databases, database_kind):
    running = start_stack(
        stack_root, mysql_databases, database_kind,
        GOODEYE_OPENAI_BASE_URL=fake.base_url, GOODEYE_OPENAI_API_KEY=fake.api_key, GOODEYE_OPENAI_MODEL="fake-image-model",
    )
    yield running
    running.stack.stop()


@pytest.fixture()
def owner(similar_stack):
    return similar_stack.new_owner()


def upload(stack, owner, data, name="picture.png"):
    response = requests.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": (name, data)})
    assert response.status_code == 201, response.text
    return response.json()


def similar(stack, owner, image_id, **params):
    return requests.get(f"{stack.url}/v1/images/{image_id}/similar", headers=owner.headers, params=params)


def error_code(response):
    return response.json()["error"]["code"]


def image_count(stack):
    db = make_database(stack.settings.database)
    try:
        with db.bind_ctx([Image]):
            return Image.select().count()
    finally:
        db.close()


def blocked_copy():
    """The blocked scene re-encoded as JPEG quality 70: a copy, not the same bytes."""
    return near_duplicates(scene(BLOCKED_SCENE))["JPEG quality 70"]


@pytest.fixture(scope="module")
def blocked(similar_stack, tmp_path_factory):
    path = tmp_path_factory.mktemp("blocklist") / "blocked.png"
    path.write_bytes(scene(BLOCKED_SCENE))
    result = similar_stack.admin("blocklist", "add", str(path), "--reason", "test picture", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_near_duplicates_are_found_nearest_first_and_unrelated_pictures_are_not(similar_stack, owner):
    original = upload(similar_stack, owner, scene(1))
    copies = {how: upload(similar_stack, owner, data, f"copy-{i}.png") for i, (how, data) in enumerate(near_duplicates(scene(1)).items())}
    unrelated = [upload(similar_stack, owner, data) for data in (scene(2), scene(3), noise(4))]

    response = similar(similar_stack, owner, original["id"])
    assert response.status_code == 200
    found = response.json()["data"]
    assert {record["id"] for record in found} == {record["id"] for record in copies.values()}
    assert [record["distance"] for record in found] == sorted(record["distance"] for record in found)
    assert all(record["distance"] <= 8 for record in found)
    assert original["id"] not in {record["id"] for record in found}
    assert not {record["id"] for record in unrelated} & {record["id"] for record in found}
    assert len(similar(similar_stack, owner, original["id"], limit=2).json()["data"]) == 2

    # "Do I already have this?", multipart and base64; nothing is stored.
    before = image_count(similar_stack)
    webp = near_duplicates(scene(1))["WebP"]
    by_file = requests.post(f"{similar_stack.url}/v1/images/similar", headers=owner.headers,
                            files={"file": ("q.webp", webp)}, data={"max_distance": "8", "limit": "100"})
    by_data = requests.post(f"{similar_stack.url}/v1/images/similar", headers=owner.headers,
                            json={"data": base64.b64encode(webp).decode(), "max_distance": 8})
    assert by_file.status_code == by_data.status_code == 200
    assert by_file.json() == by_data.json()
    assert original["id"] in {record["id"] for record in by_file.json()["data"]}
    assert image_count(similar_stack) == before


def test_search_stays_in_the_callers_project(similar_stack, owner):
    stranger = similar_stack.new_owner()
    mine = upload(similar_stack, owner, scene(7))
    theirs = upload(similar_stack, stranger, scene(7))
    assert similar(similar_stack, owner, mine["id"]).json()["data"] == []
    response = similar(similar_stack, stranger, mine["id"])
    assert response.status_code == 404 and error_code(response) == "image_not_found"
    assert similar(similar_stack, owner, "img_doesnotexist").status_code == 404
    assert theirs["id"] not in str(requests.post(f"{similar_stack.url}/v1/images/similar", headers=owner.headers,
                                                  files={"file": ("q.png", scene(7))}).json())


@pytest.mark.parametrize(
    "params",
    [{"max_distance": "-1"}, {"max_distance": "17"}, {"max_distance": "8.5"}, {"max_distance": "eight"}, {"limit": "0"}, {"limit": "101"}],
)
def test_bad_search_parameters_are_400(similar_stack, owner, params):
    record = upload(similar_stack, owner, scene(8))
    response = similar(similar_stack, owner, record["id"], **params)
    assert response.status_code == 400 and error_code(response) == "invalid_request"
    body = {"data": base64.b64encode(scene(8)).decode(), **{k: json.loads(v) if v[0] in "-0123456789" else v for k, v in params.items()}}
    response = requests.post(f"{similar_stack.url}/v1/images/similar", headers=owner.headers, json=body)
    assert response.status_code == 400 and error_code(response) == "invalid_request"


@pytest.mark.parametrize("data, status", [(b"not an image at all", 415), (b"\x89PNG\r\n\x1a\nbroken", 422)])
def test_a_search_body_that_is_not_an_image_is_refused(similar_stack, owner, data, status):
    response = requests.post(f"{similar_stack.url}/v1/images/similar", headers=owner.headers, files={"file": ("x.png", data)})
    assert response.status_code == status
    response = requests.post(f"{similar_stack.url}/v1/images/similar", headers=owner.headers, json={"data": base64.b64encode(data).decode()})
    assert response.status_code == status


def test_a_blocked_pictures_copy_is_refused_and_nothing_is_kept(similar_stack, owner, blocked):
    assert blocked["max_distance"] == 4 and blocked["reason"] == "test picture"
    before_rows, before_blobs = image_count(similar_stack), similar_stack.blob_keys()
    response = requests.post(f"{similar_stack.url}/v1/images", headers=owner.headers, files={"file": ("copy.jpg", blocked_copy())})
    assert response.status_code == 451 and error_code(response) == "image_blocked"
    response = requests.post(f"{similar_stack.url}/v1/images", headers=owner.headers,
                             json={"data": base64.b64encode(near_duplicates(scene(BLOCKED_SCENE))["WebP"]).decode()})
    assert response.status_code == 451 and error_code(response) == "image_blocked"
    assert image_count(similar_stack) == before_rows and similar_stack.blob_keys() == before_blobs
    upload(similar_stack, owner, scene(BLOCKED_SCENE + 1))  # an unrelated picture still goes through


def test_a_blocked_generated_output_is_a_null_slot(similar_stack, owner, fake, blocked):
    fake.outputs = {0: blocked_copy()}
    try:
        response = requests.post(f"{similar_stack.url}/v1/image-generators/openai/generate", headers=owner.headers,
                                 json={"prompt": "a picture", "n": 2})
    finally:
        fake.outputs = {}
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["hosted_images"][0] is None and body["image_urls"][0] is None
    assert body["hosted_images"][1]["id"].startswith("img_")
    listed = requests.get(f"{similar_stack.url}/v1/images", headers=owner.headers).json()["data"]
    assert [record["id"] for record in listed] == [body["hosted_images"][1]["id"]]
    db = make_database(similar_stack.settings.database)
    with db.bind_ctx([Generation]):
        row = Generation.get(Generation.id == body["generation_id"])
    db.close()
    assert row.status == "partial" and "output 0" in row.error


def test_enforce_deletes_matches_in_every_project_and_dry_run_deletes_nothing(similar_stack, owner, tmp_path):
    other = similar_stack.new_owner()
    picture = scene(600)
    doomed = [upload(similar_stack, owner, picture), upload(similar_stack, other, near_duplicates(picture)["resized to 90%"])]
    kept = upload(similar_stack, other, scene(601))
    path = tmp_path / "later.png"
    path.write_bytes(picture)
    added = similar_stack.admin("blocklist", "add", str(path), "--max-distance", "6", "--json")
    entry = json.loads(added.output)
    try:
        dry = similar_stack.admin("blocklist", "enforce", "--dry-run", "--json")
        assert json.loads(dry.output) == {"matched": 2, "deleted": 0, "dry_run": True}
        assert requests.get(f"{similar_stack.url}/v1/images/{doomed[0]['id']}", headers=owner.headers).status_code == 200
        done = similar_stack.admin("blocklist", "enforce")
        assert done.exit_code == 0 and "deleted 2 of 2" in done.output
        assert requests.get(f"{similar_stack.url}/v1/images/{doomed[0]['id']}", headers=owner.headers).status_code == 404
        assert requests.get(f"{similar_stack.url}/v1/images/{doomed[1]['id']}", headers=other.headers).status_code == 404
        assert requests.get(f"{similar_stack.url}/v1/images/{kept['id']}", headers=other.headers).status_code == 200
        assert {record["sha256"] for record in doomed}.isdisjoint(similar_stack.blob_keys())
    finally:
        assert similar_stack.admin("blocklist", "remove", entry["id"]).exit_code == 0
    listed = json.loads(similar_stack.admin("blocklist", "list", "--json").output)
    assert entry["id"] not in {row["id"] for row in listed}
    assert all(set(row) == {"id", "hash", "reason", "max_distance", "created_at"} for row in listed)


def test_blocklist_add_of_a_non_image_is_one_line_and_adds_nothing(similar_stack, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a picture")
    before = similar_stack.admin("blocklist", "list", "--json").output
    result = CliRunner().invoke(cli_main, ["admin", "blocklist", "add", str(path)], env=similar_stack.env)
    assert result.exit_code != 0
    assert result.stderr.strip().count("\n") == 0 and "unsupported_image_type" in result.stderr
    assert similar_stack.admin("blocklist", "list", "--json").output == before


def test_the_cli_finds_similar_images_by_id_and_by_file(similar_stack, owner, tmp_path):
    original = upload(similar_stack, owner, scene(9))
    copy = upload(similar_stack, owner, near_duplicates(scene(9))["JPEG quality 70"])
    path = tmp_path / "query.webp"
    path.write_bytes(near_duplicates(scene(9))["WebP"])
    env = {"GOODEYE_URL": similar_stack.url, "GOODEYE_API_KEY": owner.key, "GOODEYE_CONFIG": str(tmp_path / "absent.json")}
    by_id = CliRunner().invoke(cli_main, ["images", "similar", original["id"], "--json"], env=env)
    assert by_id.exit_code == 0, by_id.output
    assert [record["id"] for record in json.loads(by_id.stdout)["data"]] == [copy["id"]]
    by_file = CliRunner().invoke(cli_main, ["images", "similar", str(path), "--max-distance", "8"], env=env)
    assert by_file.exit_code == 0 and original["id"] in by_file.stdout and copy["id"] in by_file.stdout
    bad = CliRunner().invoke(cli_main, ["images", "similar", original["id"], "--max-distance", "17"], env=env)
    assert bad.exit_code == 2
