"""Shared blobs keep exactly one reference per image whatever races: concurrent deletes of one image,
a delete that finds the row already gone, and a scope delete, the sweeper and an image delete
reaching the same image at once. Another tenant who stored the same bytes never loses them."""

import io
import json
import secrets
import threading
from datetime import timedelta

import pytest
from PIL import Image

from goodeye.config import load_settings
from goodeye.context import Context
from goodeye.db import database, using
from goodeye.errors import ImageNotFound
from goodeye.images.service import delete_image, remove_images
from goodeye.models import Image as ImageRow, utcnow
from goodeye.sweeper import sweep
from tests.reliability.conftest import start_reliability_stack
from tests.reliability.helpers import ClientPool, DbProbe, sha256

DELETE_ROUNDS = 50
CONCURRENT_DELETES = 8
THREE_WAY_ROUNDS = 8


def _png():
    out = io.BytesIO()
    Image.new("RGB", (8, 8), tuple(secrets.token_bytes(3))).save(out, "PNG")
    return out.getvalue()


def _upload(session, stack, owner, data, **fields):
    answer = session.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("x.png", data)}, data=fields)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _bytes_of(session, stack, owner, record):
    return session.get(f"{stack.url}/v1/i/{record['token']}.png", headers=owner.headers).content


def test_concurrent_deletes_of_an_image_release_its_blob_once(rel_stack, rel_db):
    attacker, victim = rel_stack.new_owner(), rel_stack.new_owner()
    extra_deletes = lost = 0
    with ClientPool(CONCURRENT_DELETES) as pool:
        session = pool.session()
        for _round in range(DELETE_ROUNDS):
            data = _png()
            kept = _upload(session, rel_stack, victim, data)
            doomed = _upload(session, rel_stack, attacker, data)
            start = threading.Barrier(CONCURRENT_DELETES)

            def delete(session, _n, doomed=doomed, start=start):
                start.wait()
                return session.delete(f"{rel_stack.url}/v1/images/{doomed['id']}", headers=attacker.headers).status_code

            statuses = pool.map(delete, range(CONCURRENT_DELETES))
            assert set(statuses) <= {204, 404}
            extra_deletes += statuses.count(204) - 1
            lost += _bytes_of(session, rel_stack, victim, kept) != data
    assert (extra_deletes, lost) == (0, 0), f"{extra_deletes} extra 204s, {lost}/{DELETE_ROUNDS} victim images lost"
    for sha, refs in rel_db.blob_refs().items():
        images = rel_db.scalar("SELECT COUNT(*) FROM image WHERE sha256 = ?", sha)
        assert refs == images, (sha, refs, images)


def test_a_delete_that_finds_the_row_gone_releases_nothing(rel_stack, rel_db):
    owner, victim = rel_stack.new_owner(), rel_stack.new_owner()
    settings = load_settings(rel_stack.env)
    ctx = Context.from_settings(settings)
    data = _png()
    with ClientPool(1) as pool:
        session = pool.session()
        kept = _upload(session, rel_stack, victim, data)
        doomed = _upload(session, rel_stack, owner, data)
        with using(ctx.database), database.connection_context():
            image = ImageRow.get(ImageRow.id == doomed["id"])
        # Another delete won: its transaction took the row and the row's reference.
        rel_db.rows("DELETE FROM image WHERE id = ?", doomed["id"])
        rel_db.rows("UPDATE `blob` SET refs = refs - 1 WHERE sha256 = ?", doomed["sha256"])
        with using(ctx.database), database.connection_context():
            assert remove_images(ctx, [image]) == 0
            with pytest.raises(ImageNotFound):
                delete_image(ctx, image.project_id, image.id)
        gone = session.delete(f"{rel_stack.url}/v1/images/{doomed['id']}", headers=owner.headers)
        assert gone.status_code == 404
        assert rel_db.blob_refs()[sha256(data)] == 1
        assert _bytes_of(session, rel_stack, victim, kept) == data


@pytest.fixture()
def live_stack(stack_root, mysql_databases, database_kind):
    """A stack of the test's own, whose per-IP live limit leaves room for a live image per round.

    Its own: the race's sweep, told it is hours later, purges every image with a TTL
    on the stack, and the blobs check repairs whatever drift it finds there.
    """
    running = start_reliability_stack(stack_root, mysql_databases, database_kind, GOODEYE_LIVE_GENERATION_LIMIT="1000/hour")
    yield running
    running.stack.stop()


def test_scope_delete_sweeper_and_image_delete_racing_release_the_blob_once(live_stack):
    stack = live_stack
    owner, victim = stack.new_owner(), stack.new_owner()
    org, project = owner.project.split("/")
    settings = load_settings(stack.env)
    ctx = Context.from_settings(settings)
    probe = DbProbe(stack.settings)
    try:
        with ClientPool(3) as pool:
            session = pool.session()
            for n in range(THREE_WAY_ROUNDS):
                scope = f"race-{n}-{secrets.token_hex(3)}"
                miss = session.get(f"{stack.url}/cdn/{org}/{project}/live/{scope}", params={"prompt": f"race {scope}"})
                assert miss.status_code == 200, miss.text
                image_id = miss.headers["X-Image-Id"]
                kept = _upload(session, stack, victim, miss.content)
                # A TTL the sweeper (told it is later) finds expired, while the image is still live for the delete.
                assert session.patch(
                    f"{stack.url}/v1/images/{image_id}", headers=owner.headers, json={"ttl_seconds": 3600}
                ).status_code == 200
                start = threading.Barrier(3)

                def race(session, which, image_id=image_id, scope=scope, start=start):
                    start.wait()
                    if which == "delete":
                        return session.delete(f"{stack.url}/v1/images/{image_id}", headers=owner.headers).status_code
                    if which == "scope":
                        return session.delete(f"{stack.url}/api/v1/live/scopes/{scope}", headers=owner.headers).status_code
                    with using(ctx.database), database.connection_context():
                        return sweep(ctx, now=utcnow() + timedelta(hours=3))["expired_purged"]

                delete_status, scope_status, purged = pool.map(race, ["delete", "scope", "sweep"])
                assert scope_status == 200 and delete_status in (204, 404)
                assert _bytes_of(session, stack, victim, kept) == miss.content, f"round {n}: the victim lost its image"
                assert probe.blob_refs().get(sha256(miss.content)) == 1, f"round {n}: refs {probe.blob_refs()}"
                assert probe.scalar("SELECT COUNT(*) FROM image WHERE id = ?", image_id) == 0
    finally:
        probe.close()


def _check(stack, *flags):
    result = stack.admin("blobs", "check", "--json", *flags)
    return result.exit_code, json.loads(result.output)


def test_blobs_check_finds_planted_drift_and_repairs_it(live_stack):
    stack, owner = live_stack, live_stack.new_owner()
    probe = DbProbe(stack.settings)
    try:
        with ClientPool(1) as pool:
            session = pool.session()
            shared, lost, unlisted, unused, orphan = (_png() for _ in range(5))
            _upload(session, stack, owner, shared)
            _upload(session, stack, owner, shared)
            _upload(session, stack, owner, lost)
            _upload(session, stack, owner, unlisted)
            _upload(session, stack, owner, unused)
            assert _check(stack)[0] == 0
        # Plant: a wrong count, bytes gone, a row gone, a row no image holds, bytes no row names,
        # and usage counters that no longer match the images (one row deleted behind their back, bytes zeroed).
        project_id = probe.project_id(owner.project)
        probe.rows("UPDATE project SET storage_bytes = 0 WHERE id = ?", project_id)
        probe.rows("UPDATE `blob` SET refs = 5 WHERE sha256 = ?", sha256(shared))
        stack.storage.delete(sha256(lost))
        probe.rows("DELETE FROM `blob` WHERE sha256 = ?", sha256(unlisted))
        probe.rows("DELETE FROM image WHERE sha256 = ?", sha256(unused))
        stack.storage.put(sha256(orphan), orphan, "image/png")

        code, report = _check(stack)
        assert code == 1 and report["drift"]
        assert report["wrong_refs"] == [{"sha256": sha256(shared), "refs": 5, "images": 2}]
        assert report["missing_files"] == [{"sha256": sha256(lost), "images": 1}]
        assert report["missing_rows"] == [{"sha256": sha256(unlisted), "images": 1}]
        assert report["unreferenced_rows"] == [sha256(unused)]
        assert report["orphan_files"] == [sha256(orphan)]
        kept_bytes = 2 * len(shared) + len(lost) + len(unlisted)
        assert report["wrong_usage"] == [{"project": owner.project, "project_id": project_id, "image_count": 5,
                                          "images": 4, "storage_bytes": 0, "bytes": kept_bytes}]

        code, repaired = _check(stack, "--repair")
        assert (code, repaired["repaired"]) == (1, True)  # the lost bytes cannot come back
        refs = probe.blob_refs()
        assert (refs[sha256(shared)], refs[sha256(unlisted)]) == (2, 1)
        assert sha256(unused) not in refs
        assert not {sha256(unused), sha256(orphan)} & set(stack.blob_keys())
        assert probe.rows("SELECT image_count, storage_bytes FROM project WHERE id = ?", project_id) == [(4, kept_bytes)]

        stack.storage.put(sha256(lost), lost, "image/png")
        code, clean = _check(stack)
        assert (code, clean["drift"]) == (0, False)
        code, again = _check(stack, "--repair")
        assert (code, again["drift"], again["repaired"]) == (0, False, False)
        assert stack.admin("blobs", "check", "--repair").output.strip().endswith("no drift; nothing to repair")
    finally:
        probe.close()
