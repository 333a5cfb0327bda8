"""Per-image hard links to public images' blobs: what nginx's fast path serves.

nginx reuses a decision of the check for up to a second or two (its cache has
whole-second granularity). Making an image private, deleting it or replacing
its bytes removes or swaps its link at once, so a reused decision can only
find the link gone and fall back to the full check: those changes take effect
on the very next request. A link's name carries the image's expiry, so a new
TTL renames it and a decision kept from before (with the old Cache-Control)
falls back the same way; so does one kept from before a regeneration, whose
ETag named the old bytes, since the name carries the bytes' hash too. Only
public images have a link under the root.

Images with signed URLs have another under `signed/`, made when a URL is
signed and kept whatever the visibility (a signed URL works whatever the
visibility), so that nginx can serve a private image after a kept decision of
that exact signed URL; it is removed, renamed and swapped like the public one.
Links live beside the blobs (same filesystem), so a link costs a directory
entry, not a copy.
"""

import calendar
import os
import tempfile

from goodeye.files import make_private_dir

SIGNED_DIR = "signed"


class LinkIndex:
    """links/[signed/]{token[:2]}/{token}~{sha256[:16]}[~{expiry, epoch seconds}][~v{variant's sha256}] -> the blob's inode."""

    def __init__(self, root, blob_path):
        self.root = os.path.abspath(root)
        self.blob_path = blob_path

    def relative_path(self, token, sha256, expires_at, signed=False):
        """The link's path under the root, as nginx's alias appends it."""
        prefix = f"{SIGNED_DIR}/" if signed else ""
        return f"{prefix}{token[:2]}/{_name(token, sha256, expires_at)}"

    def add(self, token, sha256, expires_at, signed=False):
        """Point the token's link at the blob, replacing any previous one atomically."""
        directory = self._directory(token, signed)
        name = _name(token, sha256, expires_at)
        make_private_dir(directory)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        os.close(fd)
        os.unlink(tmp)
        try:
            os.link(self.blob_path(sha256), tmp)
            os.replace(tmp, os.path.join(directory, name))
        except FileNotFoundError:
            # No blob on disk (yet): without a link the full check serves it.
            name = None
        self._remove_names(directory, token, keep=name)

    def add_variant(self, token, sha256, expires_at, variant_sha256):
        """Link a variant of the token's image (named after the image's link, removed with it); the relative path, None without a blob."""
        relative = f"{self.relative_path(token, sha256, expires_at)}~v{variant_sha256}"
        path = os.path.join(self.root, relative)
        if os.path.exists(path):
            return relative
        make_private_dir(os.path.dirname(path))
        try:
            os.link(self.blob_path(variant_sha256), path)
        except FileExistsError:
            pass
        except FileNotFoundError:
            return None
        return relative

    def discard(self, relative_path):
        """Drop one link by its relative path; no error when it is gone."""
        try:
            os.unlink(os.path.join(self.root, relative_path))
        except FileNotFoundError:
            pass

    def remove_variants(self, tokens=None):
        """Drop the variants' links of these tokens (None: of every token)."""
        wanted = None if tokens is None else set(tokens)
        for directory, _subdirs, files in os.walk(self.root):
            for name in files:
                if "~v" in name and (wanted is None or name.split("~")[0] in wanted):
                    try:
                        os.unlink(os.path.join(directory, name))
                    except FileNotFoundError:
                        pass

    def remove(self, token, signed=None):
        """Drop the token's links (public, signed, or both when `signed` is None); no error when there is none."""
        for namespace in (False, True) if signed is None else (signed,):
            self._remove_names(self._directory(token, namespace), token, keep=None)

    def rename_to_current(self, token, sha256, expires_at, signed=False):
        """Give the token's link of these bytes the name its image has now, if another release named it
        otherwise; whether it did. A rename, unlike a new link, cannot bring back a link that a change
        (private, deleted, new bytes) removed meanwhile."""
        directory = self._directory(token, signed)
        current = _name(token, sha256, expires_at)
        try:
            names = os.listdir(directory)
            blob = os.stat(self.blob_path(sha256))
        except FileNotFoundError:
            return False
        if current in names:
            return False
        for name in names:
            if name.split("~")[0] != token or "~v" in name:
                continue
            path = os.path.join(directory, name)
            try:
                if os.stat(path).st_ino == blob.st_ino:
                    os.rename(path, os.path.join(directory, current))
                    return True
            except FileNotFoundError:
                continue
        return False

    def has(self, token, signed=False):
        """Whether the token has a link in that namespace."""
        try:
            return any(name.split("~")[0] == token for name in os.listdir(self._directory(token, signed)))
        except FileNotFoundError:
            return False

    def _directory(self, token, signed):
        return os.path.join(self.root, SIGNED_DIR, token[:2]) if signed else os.path.join(self.root, token[:2])

    @staticmethod
    def _remove_names(directory, token, keep):
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return
        for name in names:
            if name != keep and name.split("~")[0] == token:
                try:
                    os.unlink(os.path.join(directory, name))
                except FileNotFoundError:
                    pass

    def iter_tokens(self, signed=False):
        """Every token that has a link in that namespace."""
        root = os.path.join(self.root, SIGNED_DIR) if signed else self.root
        try:
            prefixes = [entry for entry in os.listdir(root) if entry != SIGNED_DIR]
        except FileNotFoundError:
            return
        for prefix in prefixes:
            try:
                names = os.listdir(os.path.join(root, prefix))
            except (FileNotFoundError, NotADirectoryError):
                continue
            yield from {name.split("~")[0] for name in names if not name.startswith(".")}


def _name(token, sha256, expires_at):
    name = f"{token}~{sha256[:16]}"
    return name if expires_at is None else f"{name}~{calendar.timegm(expires_at.utctimetuple())}"
