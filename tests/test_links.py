"""The fast path's link index (goodeye/serving/links.py): one name per image, the bytes and expiry in it."""

import os
from datetime import datetime

from goodeye.serving.links import LinkIndex

TOKEN = "Ab" + "c" * 30
ONE = "1" * 64
TWO = "2" * 64


def index(tmp_path):
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    (blobs / ONE).write_bytes(b"first bytes")
    (blobs / TWO).write_bytes(b"second bytes")
    return LinkIndex(str(tmp_path / "links"), lambda sha256: str(blobs / sha256))


def names(links, signed=False):
    directory = os.path.join(links.root, "signed" if signed else "", TOKEN[:2])
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def read(links, relative):
    with open(os.path.join(links.root, relative), "rb") as linked:
        return linked.read()


def test_a_new_expiry_renames_the_link_and_leaves_no_old_name(tmp_path):
    links = index(tmp_path)
    links.add(TOKEN, ONE, None)
    assert names(links) == [f"{TOKEN}~{ONE[:16]}"] and links.relative_path(TOKEN, ONE, None) == f"Ab/{TOKEN}~{ONE[:16]}"

    expiry = datetime(2026, 11, 22, 12, 0, 0)
    links.add(TOKEN, ONE, expiry)
    assert names(links) == [f"{TOKEN}~{ONE[:16]}~1795348800"] == [links.relative_path(TOKEN, ONE, expiry).split("/")[1]]


def test_new_bytes_rename_the_link_so_a_kept_decision_cannot_pair_old_headers_with_them(tmp_path):
    links = index(tmp_path)
    links.add(TOKEN, ONE, None)
    before = links.relative_path(TOKEN, ONE, None)
    links.add(TOKEN, TWO, None)
    after = links.relative_path(TOKEN, TWO, None)
    assert before != after and names(links) == [after.split("/")[1]]
    assert read(links, after) == b"second bytes"


def test_signed_links_are_a_namespace_of_their_own(tmp_path):
    links = index(tmp_path)
    links.add(TOKEN, ONE, None, signed=True)
    assert links.has(TOKEN, signed=True) and not links.has(TOKEN)
    assert links.relative_path(TOKEN, ONE, None, signed=True) == f"signed/Ab/{TOKEN}~{ONE[:16]}"
    assert read(links, links.relative_path(TOKEN, ONE, None, signed=True)) == b"first bytes"
    links.add(TOKEN, TWO, None)
    assert list(links.iter_tokens()) == [TOKEN] == list(links.iter_tokens(signed=True))

    links.remove(TOKEN, signed=False)
    assert names(links) == [] and links.has(TOKEN, signed=True)
    links.add(TOKEN, TWO, None)
    links.remove(TOKEN)
    assert names(links) == [] == names(links, signed=True)


def test_remove_drops_every_name_of_the_token_and_only_its_own(tmp_path):
    links = index(tmp_path)
    other = "Ab" + "d" * 30
    links.add(TOKEN, ONE, datetime(2026, 11, 22, 12, 0, 0))
    links.add(other, TWO, None)
    assert sorted(links.iter_tokens()) == sorted([TOKEN, other])

    links.remove(TOKEN)
    assert names(links) == [f"{other}~{TWO[:16]}"] and list(links.iter_tokens()) == [other]
    links.remove(TOKEN)  # nothing left to remove: not an error


def test_a_missing_blob_leaves_no_link(tmp_path):
    links = index(tmp_path)
    links.add(TOKEN, ONE, None)
    links.add(TOKEN, "0" * 64, datetime(2026, 11, 22, 12, 0, 0))
    assert names(links) == []


def test_a_link_an_older_release_named_is_renamed_and_a_removed_one_never_comes_back(tmp_path):
    links = index(tmp_path)
    expiry = datetime(2031, 5, 6, 7, 8, 9)
    directory = os.path.join(links.root, TOKEN[:2])
    os.makedirs(directory)
    # Older releases named links {token} and {token}~{expiry}, without the bytes' hash.
    os.link(links.blob_path(ONE), os.path.join(directory, f"{TOKEN}~1936847289"))
    assert links.rename_to_current(TOKEN, ONE, expiry)
    assert names(links) == [os.path.basename(links.relative_path(TOKEN, ONE, expiry))]
    assert read(links, links.relative_path(TOKEN, ONE, expiry)) == b"first bytes"
    assert not links.rename_to_current(TOKEN, ONE, expiry)  # already current
    # A link of other bytes (the image got new ones) is not taken for the new name.
    links.remove(TOKEN)
    os.link(links.blob_path(TWO), os.path.join(directory, TOKEN))
    assert not links.rename_to_current(TOKEN, ONE, None)
    # Nothing to rename (made private or deleted meanwhile): nothing is created.
    links.remove(TOKEN)
    assert not links.rename_to_current(TOKEN, ONE, None) and names(links) == []
