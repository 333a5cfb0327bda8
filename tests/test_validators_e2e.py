"""What one tenant can learn from, or lose to, another who stores the same bytes, in every serving mode:
one ETag per bytes on every path with 304 for it, each image's own Last-Modified, a JSON 404 for an
image whose blob is gone, and files and sockets no other local user can read."""

import glob
import hashlib
import os
import stat
from datetime import datetime, timedelta

import pytest
from werkzeug.http import http_date

from tests import factories
from tests.live_helpers import client, live_url, new_scope_slug, unique
from tests.reliability.helpers import DbProbe

LONG_AGO = datetime(2020, 1, 2, 3, 4, 5)


@pytest.fixture()
def probe(stack):
    db = DbProbe(stack.settings)
    yield db
    db.close()


def _upload(stack, owner, http, data, visibility):
    answer = http.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("x.png", data)}, data={"visibility": visibility})
    assert answer.status_code == 201, answer.text
    return answer.json()


def _updated_at(probe, image_id):
    value = probe.scalar("SELECT updated_at FROM image WHERE id = ?", image_id)
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def test_one_etag_per_bytes_and_each_images_own_last_modified_on_every_path(stack, owner, other_owner, http, probe):
    data = factories.png((31, 17))
    first = _upload(stack, owner, http, data, "public")
    # The first tenant stored these bytes long ago (its row and, on local disk, the blob file).
    probe.rows("UPDATE image SET updated_at = ? WHERE id = ?", LONG_AGO, first["id"])
    if stack.settings.storage == "local":
        os.utime(stack.storage.path(first["sha256"]), (LONG_AGO.timestamp(), LONG_AGO.timestamp()))
    second = _upload(stack, other_owner, http, data, "public")
    private = _upload(stack, other_owner, http, data, "private")
    etag = f'"{first["sha256"]}"'
    expected = {
        first["id"]: http_date(LONG_AGO),
        second["id"]: http_date(_updated_at(probe, second["id"])),
        private["id"]: http_date(_updated_at(probe, private["id"])),
    }
    assert expected[second["id"]] != expected[first["id"]]
    # Anonymous requests take nginx's fast path (nginx-local); with a key, the check's redirect.
    for record, headers in ((first, {}), (second, {}), (second, other_owner.headers), (private, other_owner.headers)):
        full = http.get(record["url"], headers=headers)
        assert full.status_code == 200 and full.content == data
        assert (full.headers["ETag"], full.headers["Last-Modified"]) == (etag, expected[record["id"]]), record["id"]
        ranged = http.get(record["url"], headers={**headers, "Range": "bytes=0-3", "If-Range": etag})
        assert ranged.status_code == 206 and ranged.headers["ETag"] == etag
        for conditional in ({"If-None-Match": etag}, {"If-None-Match": f'"x", W/{etag}'}, {"If-Modified-Since": expected[record["id"]]}):
            again = http.get(record["url"], headers={**headers, **conditional})
            assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", etag), (record["id"], conditional)
        changed = http.get(record["url"], headers={**headers, "If-None-Match": '"' + "0" * 64 + '"'})
        assert changed.status_code == 200 and changed.content == data


def test_if_match_and_if_unmodified_since_are_decided_on_the_images_own_validators(stack, owner, other_owner, http, probe):
    data = factories.png((29, 13))
    first = _upload(stack, owner, http, data, "public")
    # Another tenant stored the same bytes long ago: its time must not decide this image's preconditions.
    older = _upload(stack, other_owner, http, data, "public")
    probe.rows("UPDATE image SET updated_at = ? WHERE id = ?", LONG_AGO, older["id"])
    if stack.settings.storage == "local":
        os.utime(stack.storage.path(first["sha256"]), (LONG_AGO.timestamp(), LONG_AGO.timestamp()))
    etag = f'"{first["sha256"]}"'
    changed_at = _updated_at(probe, first["id"])
    before = http_date(LONG_AGO)
    after = http_date(changed_at + timedelta(seconds=5))
    met = ({"If-Match": etag}, {"If-Match": f'"x", {etag}'}, {"If-Match": "*"}, {"If-Unmodified-Since": after})
    failed = ({"If-Match": '"' + "0" * 64 + '"'}, {"If-Match": f"W/{etag}"}, {"If-Unmodified-Since": before})
    # Anonymous (nginx's fast path on nginx-local) and with the owner's key (the check's redirect).
    for headers in ({}, owner.headers):
        for condition in met:
            answer = http.get(first["url"], headers={**headers, **condition})
            assert (answer.status_code, answer.content) == (200, data), condition
            assert answer.headers["ETag"] == etag
        for condition in failed:
            answer = http.get(first["url"], headers={**headers, **condition})
            assert answer.status_code == 412, (condition, answer.status_code, answer.text[:200])
            assert answer.headers["Content-Type"].startswith("application/json")
            assert answer.json()["error"]["code"] == "precondition_failed"
            assert "Cache-Control" not in answer.headers or "public" not in answer.headers["Cache-Control"]
    cdn = http.get(f"{stack.url}/cdn/{owner.project}/img/{first['filename']}", headers={"If-Match": '"nope"'})
    assert cdn.status_code == 412 and cdn.json()["error"]["code"] == "PRECONDITION_FAILED"


def test_a_live_url_has_one_etag_from_its_miss_to_its_hits(stack):
    owner = stack.new_owner()
    url = live_url(stack, owner.project, new_scope_slug(), unique("a red kite"))
    with client() as session:
        miss = session.get(url)
        assert miss.status_code == 200 and miss.headers["X-Cache-Status"] == "MISS"
        hit = session.get(url)
        assert hit.headers["X-Cache-Status"] == "HIT"
        assert (hit.headers["ETag"], hit.headers["Last-Modified"]) == (miss.headers["ETag"], miss.headers["Last-Modified"])
        assert hit.headers["ETag"] == f'"{hashlib.sha256(miss.content).hexdigest()}"'
        revalidated = session.get(url, headers={"If-None-Match": miss.headers["ETag"]})
        assert revalidated.status_code == 304 and revalidated.headers["ETag"] == miss.headers["ETag"]


def test_an_image_whose_blob_is_missing_is_a_json_404(stack, owner, http):
    public = _upload(stack, owner, http, factories.png((23, 9)), "public")
    private = _upload(stack, owner, http, factories.png((9, 23)), "private")
    for record in (public, private):
        stack.storage.delete(record["sha256"])
        for link in glob.glob(os.path.join(stack.settings.link_dir, record["token"][:2], record["token"] + "*")):
            os.unlink(link)
    for record, headers in ((public, {}), (public, owner.headers), (private, owner.headers)):
        missing = http.get(record["url"], headers=headers)
        assert missing.status_code == 404, record
        assert missing.headers["Content-Type"].startswith("application/json")
        assert missing.json()["error"]["code"] == "image_not_found"
    cdn = http.get(f"{stack.url}/cdn/{owner.project}/img/{public['filename']}")
    assert cdn.status_code == 404 and cdn.json()["error"]["code"] == "IMAGE_NOT_FOUND"


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_no_other_local_user_can_reach_the_socket_or_read_the_data(plain_stack, http):
    stack, owner = plain_stack, plain_stack.new_owner()
    record = _upload(stack, owner, http, factories.png((13, 13)), "public")
    assert http.get(record["url"]).status_code == 200
    assert _mode(os.path.join(stack.settings.run_dir, "gunicorn.sock")) == 0o660
    for directory, _subdirs, _files in os.walk(stack.settings.data_dir):
        assert _mode(directory) & 0o007 == 0, directory
    blob = stack.storage.path(record["sha256"])
    links = glob.glob(os.path.join(stack.settings.link_dir, record["token"][:2], record["token"] + "*"))
    assert links and os.stat(links[0]).st_ino == os.stat(blob).st_ino
    for root in (stack.settings.blob_dir, stack.settings.link_dir):
        for directory, _subdirs, files in os.walk(root):
            for name in files:
                assert _mode(os.path.join(directory, name)) & 0o007 == 0, name


def test_the_sqlite_file_is_its_owners_alone(tmp_path):
    from goodeye.db import make_database

    path = tmp_path / "data" / "goodeye.sqlite3"
    db = make_database(f"sqlite:///{path}")
    db.connect()
    db.execute_sql("CREATE TABLE t (x)")
    db.close()
    assert _mode(path) == 0o600
    assert _mode(path.parent) & 0o007 == 0


def test_an_in_memory_sqlite_database_makes_no_file(tmp_path, monkeypatch):
    from goodeye.db import make_database

    monkeypatch.chdir(tmp_path)
    db = make_database("sqlite:///:memory:")
    db.connect()
    assert db.execute_sql("SELECT 1").fetchone() == (1,)
    db.close()
    assert os.listdir(tmp_path) == []


def test_another_users_sqlite_file_is_left_as_it_is(tmp_path, monkeypatch):
    from goodeye.db import make_database

    path = tmp_path / "theirs.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    real_open = os.open

    def readable_only(name, flags, *args):
        # Theirs to write: what os.open says to any other user (root would be let through).
        if os.fspath(name) == str(path) and flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(name, flags, *args)

    monkeypatch.setattr(os, "open", readable_only)
    make_database(f"sqlite:///{path}")
    assert _mode(path) == 0o644
