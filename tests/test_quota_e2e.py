"""Project quotas and usage end to end through nginx: uploads, generations, live MISSes, deletes,
the sweeper's purge, `GET /v1/usage`, `goodeye usage` and the operator flags. The race of many
uploads against one quota, on one stack and across two instances, is in
tests/reliability/test_concurrency.py."""

import json

import pytest
import requests
from click.testing import CliRunner

from goodeye.cli import main as cli_main
from tests import factories
from tests.reliability.helpers import DbProbe


@pytest.fixture()
def owner(plain_stack):
    return plain_stack.new_owner()


def _usage(stack, owner):
    answer = requests.get(f"{stack.url}/v1/usage", headers=owner.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _set_quota(stack, owner, *flags):
    result = stack.admin("project", "update", owner.project, *flags, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _upload(stack, owner, data=None, **fields):
    return requests.post(
        f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("q.png", data or factories.png())}, data=fields
    )


def _records(stack, owner):
    return requests.get(f"{stack.url}/v1/images?limit=100", headers=owner.headers).json()["data"]


def test_usage_is_the_sum_over_the_records_and_a_delete_frees_it_at_once(plain_stack, owner):
    assert _usage(plain_stack, owner) == {"images": 0, "storage_bytes": 0, "max_images": None, "max_storage_bytes": None}
    same = factories.png()
    for data in (same, same, factories.png((90, 70)), factories.jpeg()):
        assert _upload(plain_stack, owner, data).status_code == 201
    records = _records(plain_stack, owner)
    usage = _usage(plain_stack, owner)
    # Two images with the same bytes count twice: each keeps its size_bytes.
    assert usage["images"] == len(records) == 4
    assert usage["storage_bytes"] == sum(record["size_bytes"] for record in records)

    _set_quota(plain_stack, owner, "--max-images", "4")
    refused = _upload(plain_stack, owner)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "quota_exceeded"
    assert "at most 4 images" in refused.json()["error"]["message"]
    victim = records[0]
    assert requests.delete(f"{plain_stack.url}/v1/images/{victim['id']}", headers=owner.headers).status_code == 204
    assert _usage(plain_stack, owner)["images"] == 3
    assert _upload(plain_stack, owner).status_code == 201
    records = _records(plain_stack, owner)
    assert _usage(plain_stack, owner) == {
        "images": 4, "storage_bytes": sum(record["size_bytes"] for record in records), "max_images": 4, "max_storage_bytes": None,
    }


def test_storage_quota_counts_bytes_and_a_refused_upload_leaves_nothing(plain_stack, owner):
    first = factories.png((80, 80))
    second = factories.png((81, 80))
    _set_quota(plain_stack, owner, "--max-storage-bytes", str(len(first) + len(second) - 1))
    blobs_before = plain_stack.blob_keys()
    assert _upload(plain_stack, owner, first).status_code == 201
    refused = _upload(plain_stack, owner, second)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "quota_exceeded"
    assert len(plain_stack.blob_keys()) == len(blobs_before) + 1
    assert _usage(plain_stack, owner) == {
        "images": 1, "storage_bytes": len(first), "max_images": None, "max_storage_bytes": len(first) + len(second) - 1,
    }
    # Clearing the quota lets it in.
    assert _set_quota(plain_stack, owner, "--max-storage-bytes", "none")["max_storage_bytes"] is None
    assert _upload(plain_stack, owner, second).status_code == 201


def test_the_sweepers_purge_frees_the_quota(plain_stack, owner):
    _set_quota(plain_stack, owner, "--max-images", "2")
    doomed = _upload(plain_stack, owner, ttl_seconds="60").json()
    kept = _upload(plain_stack, owner).json()
    assert _upload(plain_stack, owner).status_code == 403
    probe = DbProbe(plain_stack.settings)
    try:
        # Expired long ago, past any grace: the next sweep purges it.
        probe.rows("UPDATE image SET expires_at = ? WHERE id = ?", "2000-01-01 00:00:00", doomed["id"])
    finally:
        probe.close()
    # Expired but not purged: still counted (its bytes are still kept).
    assert _usage(plain_stack, owner)["images"] == 2
    swept = plain_stack.admin("sweep", "--json")
    assert swept.exit_code == 0 and json.loads(swept.output)["expired_purged"] >= 1
    assert _usage(plain_stack, owner) == {
        "images": 1, "storage_bytes": kept["size_bytes"], "max_images": 2, "max_storage_bytes": None,
    }
    assert _upload(plain_stack, owner).status_code == 201


def test_generation_past_the_quota_gives_null_slots_then_403_before_generating(plain_stack, owner):
    _set_quota(plain_stack, owner, "--max-images", "2")
    url = f"{plain_stack.url}/v1/image-generators/builtin/generate"
    answer = requests.post(url, headers=owner.headers, json={"prompt": "three red foxes", "n": 3, "seed": 7})
    assert answer.status_code == 201, answer.text
    hosted = answer.json()["hosted_images"]
    assert [entry is not None for entry in hosted] == [True, True, False]
    assert _usage(plain_stack, owner)["images"] == 2

    probe = DbProbe(plain_stack.settings)
    try:
        project_id = probe.project_id(owner.project)
        generations = probe.scalar("SELECT COUNT(*) FROM generation WHERE project_id = ?", project_id)
        again = requests.post(url, headers=owner.headers, json={"prompt": "one more fox"})
        assert again.status_code == 403 and again.json()["error"]["code"] == "quota_exceeded"
        # Refused before the generator ran: no generation was recorded.
        assert probe.scalar("SELECT COUNT(*) FROM generation WHERE project_id = ?", project_id) == generations
    finally:
        probe.close()


def test_a_live_miss_over_the_quota_is_403_without_generating_and_scopes_give_back_their_images(plain_stack, owner):
    _set_quota(plain_stack, owner, "--max-images", "1")
    org, project = owner.project.split("/")
    live = f"{plain_stack.url}/cdn/{org}/{project}/live/hero"
    first = requests.get(live, params={"prompt": "a lighthouse"})
    assert first.status_code == 200 and first.headers["X-Cache-Status"] == "MISS"
    # The image it made is a HIT for ever after, quota or not.
    assert requests.get(live, params={"prompt": "a lighthouse"}).status_code == 200
    refused = requests.get(live, params={"prompt": "a windmill"})
    assert refused.status_code == 403
    assert refused.json() == {"success": False, "error": {"code": "QUOTA_EXCEEDED", "message": refused.json()["error"]["message"]}}
    scope = requests.get(f"{plain_stack.url}/api/v1/live/scopes/hero", headers=owner.headers).json()["data"]
    # No budget spent on the refused MISS.
    assert scope["currentGenerations"] == 1


    # Regenerating keeps one image, of the new size (it needs room for one more while it runs).
    _set_quota(plain_stack, owner, "--max-images", "2")
    regenerated = requests.post(f"{plain_stack.url}/api/v1/live/scopes/hero/regenerate", headers=owner.headers, json={})
    assert regenerated.status_code == 200 and regenerated.json()["data"]["regenerated"] == 1
    records = _records(plain_stack, owner)
    assert _usage(plain_stack, owner)["images"] == len(records) == 1
    assert _usage(plain_stack, owner)["storage_bytes"] == records[0]["size_bytes"]
    # Deleting the scope deletes its image and frees its place at once.
    assert requests.delete(f"{plain_stack.url}/api/v1/live/scopes/hero", headers=owner.headers).status_code == 200
    assert _usage(plain_stack, owner)["images"] == 0 and _usage(plain_stack, owner)["storage_bytes"] == 0


def test_goodeye_usage_prints_the_usage(plain_stack, owner, tmp_path):
    assert _upload(plain_stack, owner, factories.png((10, 10))).status_code == 201
    _set_quota(plain_stack, owner, "--max-images", "5", "--max-storage-bytes", "1MiB")
    env = {"GOODEYE_URL": plain_stack.url, "GOODEYE_API_KEY": owner.key, "GOODEYE_CONFIG": str(tmp_path / "none.json")}
    human = CliRunner().invoke(cli_main, ["usage"], env=env)
    assert human.exit_code == 0, human.output
    assert human.output.splitlines()[0] == "images\t1 of 5"
    machine = CliRunner().invoke(cli_main, ["usage", "--json"], env=env)
    assert json.loads(machine.output) == _usage(plain_stack, owner)
    assert json.loads(machine.output)["max_storage_bytes"] == 1024 * 1024


def test_admin_project_list_shows_quotas_and_usage(plain_stack, owner):
    _set_quota(plain_stack, owner, "--max-images", "7", "--max-storage-bytes", "2GB")
    org = owner.project.split("/")[0]
    listed = plain_stack.admin("project", "list", "--org", org, "--json")
    assert listed.exit_code == 0, listed.output
    [record] = json.loads(listed.output)
    assert (record["max_images"], record["max_storage_bytes"], record["images"]) == (7, 2_000_000_000, 0)
    # Another flag leaves the quotas as they are.
    assert _set_quota(plain_stack, owner, "--no-live-scopes")["max_images"] == 7


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("--max-images", "0", "at least 1"),
        ("--max-images", "-1", "at least 1"),
        ("--max-images", "10GB", "not a whole number"),
        ("--max-images", "1.5", "not a whole number"),
        ("--max-storage-bytes", "0", "at least 1"),
        ("--max-storage-bytes", "-1", "at least 1"),
        ("--max-storage-bytes", "10XB", "not a whole number"),
        ("--max-storage-bytes", "99999999999TiB", "at most"),
    ],
)
def test_bad_quota_flags_are_usage_errors_that_change_nothing(plain_stack, owner, flag, value, message):
    _set_quota(plain_stack, owner, "--max-images", "3")
    result = plain_stack.admin("project", "update", owner.project, flag, value)
    assert result.exit_code == 2 and message in result.output
    assert _usage(plain_stack, owner)["max_images"] == 3


def test_the_migration_counts_what_the_rows_hold(plain_stack, owner):
    """Migration 10 backfills the counters from the image rows (run again here on wrong counters)."""
    for size in ((12, 12), (13, 12)):
        assert _upload(plain_stack, owner, factories.png(size)).status_code == 201
    records = _records(plain_stack, owner)
    probe = DbProbe(plain_stack.settings)
    try:
        project_id = probe.project_id(owner.project)
        probe.rows("UPDATE project SET image_count = 99, storage_bytes = 99 WHERE id = ?", project_id)
        probe.rows("DELETE FROM schema_migration WHERE version = 10")
    finally:
        probe.close()
    migrated = plain_stack.admin("db", "migrate", "--json")
    assert migrated.exit_code == 0 and json.loads(migrated.output) == {"applied": [10]}
    usage = _usage(plain_stack, owner)
    assert (usage["images"], usage["storage_bytes"]) == (2, sum(record["size_bytes"] for record in records))


def test_a_replacement_counts_its_change_in_bytes_and_may_not_pass_the_storage_quota(plain_stack, owner):
    small, large = factories.png((20, 20)), factories.png((400, 300), color=None)
    record = _upload(plain_stack, owner, small).json()
    _set_quota(plain_stack, owner, "--max-storage-bytes", str(len(small) + 10))
    url = f"{plain_stack.url}/v1/images/{record['id']}/file"
    refused = requests.put(url, headers=owner.headers, files={"file": ("big.png", large)})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "quota_exceeded"
    assert _usage(plain_stack, owner)["storage_bytes"] == len(small)
    assert requests.get(record["url"], headers=owner.headers).content == small
    smaller = factories.gif((8, 8))
    assert len(smaller) < len(small)
    assert requests.put(url, headers=owner.headers, files={"file": ("s.gif", smaller)}).status_code == 200
    assert _usage(plain_stack, owner)["storage_bytes"] == len(smaller)
