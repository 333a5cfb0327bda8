"""Orgs, projects, keys and project quotas and settings called as services on a SQLite app."""

import hashlib
import re

import pytest
from flask import current_app

from goodeye.db import database
from goodeye.errors import AuthRequired, Conflict, InvalidApiKey, InvalidRequest, NotFound, QuotaExceeded
from goodeye.identity import auth
from goodeye.identity.records import key_record, org_record
from goodeye.identity.service import (
    authenticate,
    create_key,
    create_org,
    create_project,
    get_project_by_path,
    key_digest,
    list_keys,
    list_projects,
    revoke_key,
    verified_project,
)
from goodeye.images.service import Placement, create_image, delete_image
from goodeye.models import ApiKey, Image, Org, Project
from goodeye.projects import quota
from goodeye.projects.records import admin_project_record, project_record, usage_record
from goodeye.projects.service import (
    MAX_LIVE_GENERATIONS_PER_IP_PER_HOUR,
    get_project_by_id,
    set_allow_new_live_scopes,
    set_live_generations_per_ip_per_hour,
    update_project,
)
from tests import factories

# Keys that can never be valid, as the end-to-end authorization matrix sends them.
MALFORMED_KEYS = [
    "good_live_short",
    "Bearer",
    "good_live_" + "!" * 40,
    "x" * 300,
    "good_test_" + "a" * 40,
    "good_live_" + "a" * 40 + "\n",
    "",
]


@pytest.fixture()
def project(ctx):
    """A fresh project acme/site."""
    create_org("acme")
    return create_project("acme/site")[0]


def _usage(project_id):
    """The project's (image_count, storage_bytes) as stored now."""
    row = Project.get_by_id(project_id)
    return row.image_count, row.storage_bytes


# --- orgs and projects ------------------------------------------------------------------


def test_creating_an_org_twice_returns_the_same_row_and_says_it_existed(ctx):
    org, created = create_org("acme")
    again, created_again = create_org("acme")
    assert (created, created_again) == (True, False)
    assert again.id == org.id
    assert org_record(again, created_again) == {
        "id": org.id, "slug": "acme", "created": False, "created_at": org_record(org, True)["created_at"],
    }


def assert_validation_error(call, value, message):
    """call(value) is refused as a 400 invalid_request whose message says `message`."""
    with pytest.raises(InvalidRequest) as refused:
        call(value)
    assert (refused.value.status, refused.value.slug, refused.value.code) == (400, "invalid_request", "VALIDATION_ERROR")
    assert message in refused.value.message, value


def test_a_bad_org_slug_is_a_validation_error_and_creates_nothing(ctx):
    for slug in ["Acme", "-acme", "ac me", "ac.me", "acme/x", "acme\n", "a" * 65, "", None, "ümlaut"]:
        assert_validation_error(create_org, slug, "org slug must match")
    assert Org.select().count() == 0


def test_the_longest_and_shortest_slugs_are_accepted(ctx):
    assert create_org("a" * 64)[0].slug == "a" * 64
    assert create_org("0")[0].slug == "0"
    project, created = create_project("0/" + "b-" * 32)
    assert created and project.slug == "b-" * 32


def test_a_bad_project_slug_is_a_validation_error_and_creates_nothing(ctx):
    create_org("acme")
    for path in ["acme/Site", "acme/-site", "acme/si te", "acme/site/x", "acme/site\n", "acme/" + "s" * 65]:
        assert_validation_error(create_project, path, "project slug must match")
    assert Project.select().count() == 0


def test_a_path_without_org_and_project_is_refused(ctx):
    create_org("acme")
    for path in ["acme", "acme/", "/site", "", None]:
        for call in (create_project, get_project_by_path):
            with pytest.raises(InvalidRequest, match="expected ORG/PROJECT"):
                call(path)


def test_a_project_under_a_missing_org_is_org_not_found(ctx):
    with pytest.raises(NotFound) as refused:
        create_project("nobody/site")
    assert (refused.value.status, refused.value.code) == (404, "ORG_NOT_FOUND")
    assert Project.select().count() == 0


def test_creating_a_project_again_with_the_same_settings_returns_it(ctx, project):
    again, created = create_project("acme/site")
    assert not created and again.id == project.id
    closed, _ = create_project("acme/closed", allow_new_live_scopes=False)
    assert create_project("acme/closed", allow_new_live_scopes=False) == (closed, False)
    assert Project.select().count() == 2


def test_creating_a_project_again_with_other_settings_is_a_conflict_that_changes_nothing(ctx, project):
    with pytest.raises(Conflict) as refused:
        create_project("acme/site", allow_new_live_scopes=False)
    assert (refused.value.status, refused.value.slug) == (409, "conflict")
    assert Project.get_by_id(project.id).allow_new_live_scopes is True


def test_the_same_project_slug_may_live_in_two_orgs(ctx, project):
    create_org("other")
    theirs, created = create_project("other/site")
    assert created and theirs.id != project.id
    assert get_project_by_path("other/site").id == theirs.id
    assert get_project_by_path("acme/site").id == project.id
    assert [(row.org.slug, row.slug) for row in list_projects()] == [("acme", "site"), ("other", "site")]
    assert [row.id for row in list_projects("other")] == [theirs.id]


def test_looking_up_a_missing_project_or_org(ctx, project):
    for path in ("acme/nope", "nobody/site"):
        with pytest.raises(NotFound) as missing:
            get_project_by_path(path)
        assert (missing.value.status, missing.value.code) == (404, "PROJECT_NOT_FOUND")
    with pytest.raises(NotFound) as missing:
        list_projects("nobody")
    assert missing.value.code == "ORG_NOT_FOUND"


def test_a_project_by_id_carries_its_org_and_its_records(ctx, project):
    row = get_project_by_id(project.id)
    assert (row.slug, row.org.slug) == ("site", "acme")
    assert project_record(row) == {
        "id": str(project.id), "slug": "site", "org": "acme", "allowNewLiveScopes": True,
        "liveGenerationsPerIpPerHour": None, "createdAt": project_record(project)["createdAt"],
    }
    assert usage_record(row) == {"images": 0, "storage_bytes": 0, "max_images": None, "max_storage_bytes": None}
    assert admin_project_record(row)["id"] == project.id and admin_project_record(row)["org"] == "acme"
    with pytest.raises(Project.DoesNotExist):
        get_project_by_id(project.id + 1000)


# --- keys -----------------------------------------------------------------------------------


def test_a_key_is_stored_only_as_its_sha256(ctx, project):
    minted = [create_key(project, f"k{index}") for index in range(4)]
    plaintexts = [plaintext for _row, plaintext in minted]
    assert len(set(plaintexts)) == 4
    for row, plaintext in minted:
        # 40 base62 characters: about 238 random bits.
        assert re.fullmatch(r"good_live_[A-Za-z0-9]{40}", plaintext)
        stored = ApiKey.get_by_id(row.id)
        assert stored.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
        assert stored.prefix == plaintext[:14]
        assert "key" not in key_record(stored) and set(key_record(stored)) == {"id", "name", "prefix", "created_at", "revoked_at"}
    tables = [name for (name,) in database.execute_sql("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
    dump = "\n".join(repr(row) for table in tables for row in database.execute_sql(f'SELECT * FROM "{table}"').fetchall())
    assert not [key for key in plaintexts if key in dump or key[len("good_live_"):] in dump]


def test_a_valid_key_authenticates_as_its_project_only(ctx, project):
    create_org("other")
    other = create_project("other/site")[0]
    _row, mine = create_key(project)
    _row, theirs = create_key(other)
    assert authenticate(mine) == project.id
    assert authenticate(theirs) == other.id


def test_an_unknown_well_formed_key_is_an_invalid_api_key(ctx, project):
    _row, plaintext = create_key(project)
    # The same key with its last character changed: well formed, never minted.
    unknown = plaintext[:-1] + ("a" if plaintext[-1] != "a" else "b")
    with pytest.raises(InvalidApiKey) as refused:
        authenticate(unknown)
    assert (refused.value.status, refused.value.slug, refused.value.code) == (401, "invalid_api_key", "INVALID_API_KEY")


def test_a_malformed_key_is_an_invalid_api_key(ctx, project):
    for key in MALFORMED_KEYS:
        with pytest.raises(InvalidApiKey):
            authenticate(key)


def test_the_key_format_takes_32_to_128_characters_after_the_prefix(ctx):
    for length in (32, 128):
        key = "good_live_" + "a" * length
        assert key_digest(key) == hashlib.sha256(key.encode()).hexdigest()
    for length in (31, 129):
        with pytest.raises(InvalidApiKey):
            key_digest("good_live_" + "a" * length)


def test_a_row_whose_digest_differs_or_that_is_revoked_is_refused(ctx):
    digest = "a" * 64
    assert verified_project((digest, 7, None), digest) == 7
    for row in (None, (None, 7, None), ("b" * 64, 7, None), (digest, 7, "2026-01-01 00:00:00")):
        with pytest.raises(InvalidApiKey):
            verified_project(row, digest)


def test_a_revoked_key_is_refused_and_the_others_keep_working(ctx, project):
    revoked, revoked_plaintext = create_key(project, "old")
    _kept, kept_plaintext = create_key(project, "new")
    assert authenticate(revoked_plaintext) == project.id
    row = revoke_key(revoked.id)
    assert row.revoked_at is not None and key_record(row)["revoked_at"] is not None
    with pytest.raises(InvalidApiKey):
        authenticate(revoked_plaintext)
    assert authenticate(kept_plaintext) == project.id
    assert ApiKey.get_by_id(revoked.id).revoked_at is not None


def test_revoking_twice_keeps_the_first_time_and_an_unknown_key_is_not_found(ctx, project):
    key, _plaintext = create_key(project)
    first = revoke_key(key.id).revoked_at
    assert revoke_key(key.id).revoked_at == first
    assert ApiKey.get_by_id(key.id).revoked_at == first
    with pytest.raises(NotFound) as missing:
        revoke_key("key_doesnotexist")
    assert missing.value.status == 404


def test_keys_are_listed_per_project_newest_first(ctx, project):
    create_org("other")
    other = create_project("other/site")[0]
    newer, _ = create_key(project, "newer")
    older, _ = create_key(project, "older")
    create_key(other, "theirs")
    # Minted in the same instant or not, the one dated earlier is listed last.
    ApiKey.update(created_at=newer.created_at.replace(year=2020)).where(ApiKey.id == older.id).execute()
    assert [key.name for key in list_keys(project)] == ["newer", "older"]
    assert [key.name for key in list_keys(other)] == ["theirs"]


def test_a_request_without_a_key_is_anonymous_and_needs_one_where_required(ctx, project):
    for headers in ({}, {"Authorization": "   "}, {"X-API-Key": ""}):
        with current_app.test_request_context(headers=headers):
            assert auth.optional_project_id(allow_x_api_key=True) is None
            with pytest.raises(AuthRequired) as missing:
                auth.required_project_id(allow_x_api_key=True)
            assert (missing.value.status, missing.value.code) == (401, "UNAUTHORIZED")


def test_a_request_with_a_wrong_key_is_refused_never_taken_as_anonymous(ctx, project):
    revoked, revoked_plaintext = create_key(project)
    revoke_key(revoked.id)
    wrong = [
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer good_live_" + "x" * 40},
        {"Authorization": f"Bearer {revoked_plaintext}"},
        {"X-API-Key": "nonsense"},
    ]
    for headers in wrong:
        with current_app.test_request_context(headers=headers):
            with pytest.raises(InvalidApiKey):
                auth.optional_project_id(allow_x_api_key=True)


def test_a_request_with_a_valid_key_is_its_project(ctx, project):
    _row, plaintext = create_key(project)
    for headers in (
        {"Authorization": f"Bearer {plaintext}"}, {"Authorization": f"bearer  {plaintext} "}, {"X-API-Key": plaintext},
    ):
        with current_app.test_request_context(headers=headers):
            assert auth.required_project_id(allow_x_api_key=True) == project.id


def test_x_api_key_is_read_only_where_it_is_allowed(ctx, project):
    _row, plaintext = create_key(project)
    with current_app.test_request_context(headers={"X-API-Key": plaintext}):
        assert auth.optional_project_id() is None
        assert auth.optional_project_id(allow_x_api_key=True) == project.id


# --- quotas ---------------------------------------------------------------------------------


def test_usage_is_taken_and_given_back(ctx, project):
    quota.take_usage(project.id, storage_bytes=100)
    quota.take_usage(project.id, images=2, storage_bytes=50)
    assert _usage(project.id) == (3, 150)
    quota.release_usage(project.id, 100)
    assert _usage(project.id) == (2, 50)
    quota.release_usage(project.id, 50, images=2)
    assert _usage(project.id) == (0, 0)


def test_the_image_quota_admits_up_to_the_limit_and_refuses_at_it(ctx, project):
    quota.set_quotas(project.id, max_images=2)
    quota.take_usage(project.id, storage_bytes=10)
    quota.take_usage(project.id, storage_bytes=10)
    assert _usage(project.id) == (2, 20)
    with pytest.raises(QuotaExceeded) as refused:
        quota.take_usage(project.id, storage_bytes=10)
    assert (refused.value.status, refused.value.slug) == (403, "quota_exceeded")
    assert refused.value.message == "This project may keep at most 2 images; it keeps 2."
    assert _usage(project.id) == (2, 20)
    with pytest.raises(QuotaExceeded):
        quota.check_room(project.id, images=1)


def test_the_storage_quota_admits_exactly_the_limit_and_not_a_byte_more(ctx, project):
    quota.set_quotas(project.id, max_storage_bytes=100)
    quota.take_usage(project.id, storage_bytes=60)
    with pytest.raises(QuotaExceeded) as refused:
        quota.take_usage(project.id, storage_bytes=41)
    assert refused.value.message == "This project may keep at most 100 bytes; it keeps 60 and this needs 41 more."
    assert _usage(project.id) == (1, 60)
    quota.check_room(project.id, storage_bytes=40)
    quota.take_usage(project.id, storage_bytes=40)
    assert _usage(project.id) == (2, 100)


def test_a_replacement_that_shrinks_fits_even_over_the_quota_and_one_that_grows_does_not(ctx, project):
    quota.take_usage(project.id, storage_bytes=100)
    # A quota below the usage is allowed: nothing is removed, growth is refused.
    quota.set_quotas(project.id, max_storage_bytes=80, max_images=1)
    with pytest.raises(QuotaExceeded):
        quota.take_usage(project.id, images=0, storage_bytes=1)
    quota.take_usage(project.id, images=0, storage_bytes=-30)
    assert _usage(project.id) == (1, 70)
    quota.take_usage(project.id, images=0, storage_bytes=10)
    assert _usage(project.id) == (1, 80)


def test_quotas_change_only_when_given_and_none_clears_them(ctx, project):
    quota.set_quotas(project.id, max_images=7, max_storage_bytes=quota.MAX_QUOTA)
    quota.set_quotas(project.id)
    quota.set_quotas(project.id, max_storage_bytes=None)
    row = Project.get_by_id(project.id)
    assert (row.max_images, row.max_storage_bytes) == (7, None)
    with pytest.raises(ValueError, match="unknown quota"):
        quota.set_quotas(project.id, max_pixels=1)


def test_an_upload_past_the_quota_is_refused_and_a_delete_gives_its_place_back(ctx, project):
    quota.set_quotas(project.id, max_images=1)
    image = create_image(ctx, project.id, factories.png(), Placement())
    assert _usage(project.id) == (1, image.size_bytes)
    blobs_before = sorted(sha for sha, _modified in ctx.storage.iter_blobs())
    with pytest.raises(QuotaExceeded):
        create_image(ctx, project.id, factories.png((30, 30)), Placement())
    assert _usage(project.id) == (1, image.size_bytes)
    assert Image.select().count() == 1
    assert sorted(sha for sha, _modified in ctx.storage.iter_blobs()) == blobs_before
    delete_image(ctx, project.id, image.id)
    assert _usage(project.id) == (0, 0)
    assert create_image(ctx, project.id, factories.png(), Placement()).project_id == project.id


def test_drifted_counters_are_found_and_recounted_from_the_rows(ctx, project):
    kept = [create_image(ctx, project.id, factories.png(size), Placement()) for size in ((12, 12), (13, 12))]
    assert quota.usage_drift() == []
    Project.update(image_count=99, storage_bytes=99).where(Project.id == project.id).execute()
    assert quota.usage_drift() == [{
        "project": "acme/site", "project_id": project.id, "image_count": 99, "images": 2,
        "storage_bytes": 99, "bytes": sum(image.size_bytes for image in kept),
    }]
    quota.recount_usage(project.id)
    assert _usage(project.id) == (2, sum(image.size_bytes for image in kept))
    assert quota.usage_drift() == []


# --- project settings ---------------------------------------------------------------------------


def test_the_live_limit_takes_whole_numbers_in_range_or_none(ctx, project):
    assert get_project_by_id(project.id).live_generations_per_ip_per_hour is None
    for limit in (1, 25, MAX_LIVE_GENERATIONS_PER_IP_PER_HOUR, None):
        set_live_generations_per_ip_per_hour(project.id, 40)
        assert set_live_generations_per_ip_per_hour(project.id, limit).live_generations_per_ip_per_hour == limit
        assert get_project_by_id(project.id).live_generations_per_ip_per_hour == limit


def test_a_live_limit_out_of_range_or_of_another_type_changes_nothing(ctx, project):
    set_live_generations_per_ip_per_hour(project.id, 40)
    for limit in (0, -1, MAX_LIVE_GENERATIONS_PER_IP_PER_HOUR + 1, 2.5, "25", True, {}):
        with pytest.raises(InvalidRequest) as refused:
            set_live_generations_per_ip_per_hour(project.id, limit)
        assert (refused.value.status, refused.value.code) == (400, "VALIDATION_ERROR")
        assert "liveGenerationsPerIpPerHour" in refused.value.message
    assert get_project_by_id(project.id).live_generations_per_ip_per_hour == 40


def test_allowing_new_live_scopes_is_switched_per_project(ctx, project):
    create_org("other")
    other = create_project("other/site")[0]
    assert set_allow_new_live_scopes(project.id, False).allow_new_live_scopes is False
    assert get_project_by_id(other.id).allow_new_live_scopes is True
    assert set_allow_new_live_scopes(project.id, 1).allow_new_live_scopes is True


def test_a_project_update_applies_all_its_changes_or_none(ctx, project):
    updated = update_project(project.id, {"allow_new_live_scopes": False, "live_generations_per_ip_per_hour": 25})
    assert (updated.allow_new_live_scopes, updated.live_generations_per_ip_per_hour) == (False, 25)
    assert update_project(project.id, {}).live_generations_per_ip_per_hour == 25
    with pytest.raises(InvalidRequest):
        update_project(project.id, {"allow_new_live_scopes": True, "live_generations_per_ip_per_hour": 0})
    row = get_project_by_id(project.id)
    assert (row.allow_new_live_scopes, row.live_generations_per_ip_per_hour) == (False, 25)
