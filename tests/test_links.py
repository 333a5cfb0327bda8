"""The fast path's link index (goodeye/serving/links.py): one name per image, carrying its bytes, last change and expiry."""

import os
from dataclasses import dataclass, replace
from datetime import datetime

from goodeye.serving.links import LinkIndex

TOKEN = "Ab" + "c" * 30
ONE = "1" * 64
TWO = "2" * 64
CHANGED = datetime(2026, 11, 20, 9, 30, 0)
CHANGED_M = "m1795167000000000"


@dataclass(frozen=True)
class Version:
    """What a link's name is made of: the image's token, bytes, expiry and last change."""

    token: str = TOKEN
    sha256: str = ONE
    expires_at: datetime = None
    updated_at: datetime = CHANGED


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
    links.add(Version())
    assert names(links) == [f"{TOKEN}~{ONE[:16]}~{CHANGED_M}"]
    assert links.relative_path(Version()) == f"Ab/{TOKEN}~{ONE[:16]}~{CHANGED_M}"

    expiring = Version(expires_at=datetime(2026, 11, 22, 12, 0, 0))
    links.add(expiring)
    assert names(links) == [f"{TOKEN}~{ONE[:16]}~{CHANGED_M}~1795348800"] == [links.relative_path(expiring).split("/")[1]]


def test_new_bytes_rename_the_link_so_a_kept_decision_cannot_pair_old_headers_with_them(tmp_path):
    links = index(tmp_path)
    links.add(Version())
    before = links.relative_path(Version())
    links.add(Version(sha256=TWO))
    after = links.relative_path(Version(sha256=TWO))
    assert before != after and names(links) == [after.split("/")[1]]
    assert read(links, after) == b"second bytes"


def test_a_change_of_the_image_renames_the_link_so_a_kept_decision_cannot_serve_old_headers(tmp_path):
    links = index(tmp_path)
    links.add(Version())
    links.add_variant(Version(), TWO)
    before = links.relative_path(Version())
    changed = Version(updated_at=datetime(2026, 11, 20, 9, 30, 1))
    links.add(changed)
    # The image changed: the old name (and its variants' names) are gone.
    assert names(links) == [links.relative_path(changed).split("/")[1]] != [before.split("/")[1]]
    # Even within the same second (a filename the URL names may have changed).
    assert links.relative_path(replace(changed, updated_at=datetime(2026, 11, 20, 9, 30, 1, 1))).endswith("~m1795167001000001")


def test_signed_links_are_a_namespace_of_their_own(tmp_path):
    links = index(tmp_path)
    links.add(Version(), signed=True)
    assert links.has(TOKEN, signed=True) and not links.has(TOKEN)
    assert links.relative_path(Version(), signed=True) == f"signed/Ab/{TOKEN}~{ONE[:16]}~{CHANGED_M}"
    assert read(links, links.relative_path(Version(), signed=True)) == b"first bytes"
    links.add(Version(sha256=TWO))
    assert list(links.iter_tokens()) == [TOKEN] == list(links.iter_tokens(signed=True))

    links.remove(TOKEN, signed=False)
    assert names(links) == [] and links.has(TOKEN, signed=True)
    links.add(Version(sha256=TWO))
    links.remove(TOKEN)
    assert names(links) == [] == names(links, signed=True)


def test_remove_drops_every_name_of_the_token_and_only_its_own(tmp_path):
    links = index(tmp_path)
    other = "Ab" + "d" * 30
    links.add(Version(expires_at=datetime(2026, 11, 22, 12, 0, 0)))
    links.add(Version(token=other, sha256=TWO))
    assert sorted(links.iter_tokens()) == sorted([TOKEN, other])

    links.remove(TOKEN)
    assert names(links) == [f"{other}~{TWO[:16]}~{CHANGED_M}"] and list(links.iter_tokens()) == [other]
    links.remove(TOKEN)  # nothing left to remove: not an error


def test_a_missing_blob_leaves_no_link(tmp_path):
    links = index(tmp_path)
    links.add(Version())
    links.add(Version(sha256="0" * 64, expires_at=datetime(2026, 11, 22, 12, 0, 0)))
    assert names(links) == []


def test_a_link_named_otherwise_is_renamed_and_a_removed_one_never_comes_back(tmp_path):
    links = index(tmp_path)
    current = Version(expires_at=datetime(2031, 5, 6, 7, 8, 9))
    directory = os.path.join(links.root, TOKEN[:2])
    os.makedirs(directory)
    # Older releases named links {token} and {token}~{expiry}; a change made in bulk leaves an older time.
    for old_name in (f"{TOKEN}~1936847289", f"{TOKEN}~{ONE[:16]}~m1795166995000000~1936847289"):
        os.link(links.blob_path(ONE), os.path.join(directory, old_name))
        assert links.rename_to_current(current)
        assert names(links) == [os.path.basename(links.relative_path(current))]
        assert read(links, links.relative_path(current)) == b"first bytes"
        assert not links.rename_to_current(current)  # already current
        links.remove(TOKEN)
    # A link of other bytes (the image got new ones) is not taken for the new name.
    os.link(links.blob_path(TWO), os.path.join(directory, TOKEN))
    assert not links.rename_to_current(Version())
    # Nothing to rename (made private or deleted meanwhile): nothing is created.
    links.remove(TOKEN)
    assert not links.rename_to_current(Version()) and names(links) == []
