"""The fast path's link index (goodeye/serving/links.py): one name per image, its bytes' hash and expiry in it."""

import os
from datetime import datetime

from goodeye.serving.links import LinkIndex

TOKEN = "Ab" + "c" * 30


def index(tmp_path):
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    (blobs / "one").write_bytes(b"first bytes")
    (blobs / "two").write_bytes(b"second bytes")
    return LinkIndex(str(tmp_path / "links"), lambda sha256: str(blobs / sha256))


def names(links):
    return sorted(os.listdir(os.path.join(links.root, TOKEN[:2])))


def test_new_bytes_or_a_new_expiry_rename_the_link_and_leave_no_old_name(tmp_path):
    links = index(tmp_path)
    links.add(TOKEN, "one", None)
    assert names(links) == [f"{TOKEN}~one"] and links.relative_path(TOKEN, "one", None) == f"Ab/{TOKEN}~one"

    expiry = datetime(2026, 11, 22, 12, 0, 0)
    links.add(TOKEN, "one", expiry)
    assert names(links) == [f"{TOKEN}~one~1795348800"] == [links.relative_path(TOKEN, "one", expiry).split("/")[1]]

    links.add(TOKEN, "two", None)
    assert names(links) == [f"{TOKEN}~two"]
    with open(os.path.join(links.root, links.relative_path(TOKEN, "two", None)), "rb") as linked:
        assert linked.read() == b"second bytes"


def test_remove_drops_every_name_of_the_token_and_only_its_own(tmp_path):
    links = index(tmp_path)
    other = "Ab" + "d" * 30
    links.add(TOKEN, "one", datetime(2026, 11, 22, 12, 0, 0))
    links.add(other, "two", None)
    assert sorted(links.iter_tokens()) == sorted([TOKEN, other])

    links.remove(TOKEN)
    assert names(links) == [f"{other}~two"] and list(links.iter_tokens()) == [other]
    links.remove(TOKEN)  # nothing left to remove: not an error


def test_a_missing_blob_leaves_no_link(tmp_path):
    links = index(tmp_path)
    links.add(TOKEN, "one", None)
    links.add(TOKEN, "gone", datetime(2026, 11, 22, 12, 0, 0))
    assert names(links) == []
