"""Per-image hard links to public images' blobs: what nginx's fast path serves.

nginx reuses a decision of the check for up to a second or two (its cache has
whole-second granularity). Making an image private, deleting it or replacing
its bytes removes or swaps its link at once, so a reused decision can only
find the link gone and fall back to the full check: those changes take effect
on the very next request. A link's name carries the image's expiry, so a new
TTL renames it and a decision kept from before (with the old Cache-Control)
falls back the same way; so does one kept from before a regeneration, whose
ETag named the old bytes, since the name carries the bytes' hash too. Only
public images have a link. Links live beside
the blobs (same filesystem), so a link costs a directory entry, not a copy.
"""

import calendar
import os
import tempfile


class LinkIndex:
    """links/{token[:2]}/{token}~{sha256[:16]}[~{expiry, epoch seconds}][~v{variant's sha256}] -> the blob's inode."""

    def __init__(self, root, blob_path):
        self.root = os.path.abspath(root)
        self.blob_path = blob_path

    def relative_path(self, token, sha256, expires_at):
        """The link's path under the root, as nginx's alias appends it."""
        return f"{token[:2]}/{_name(token, sha256, expires_at)}"

    def add(self, token, sha256, expires_at):
        """Point the token's link at the blob, replacing any previous one atomically."""
        directory = os.path.join(self.root, token[:2])
        name = _name(token, sha256, expires_at)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        os.close(fd)
        os.unlink(tmp)
        try:
            os.link(self.blob_path(sha256), tmp)
            os.replace(tmp, os.path.join(directory, name))
        except FileNotFoundError:
            # No blob on disk (yet): without a link the full check serves it.
            name = None
        self._remove_names(token, keep=name)

    def add_variant(self, token, sha256, expires_at, variant_sha256):
        """Link a variant of the token's image (named after the image's link, removed with it); the relative path, None without a blob."""
        relative = f"{self.relative_path(token, sha256, expires_at)}~v{variant_sha256}"
        path = os.path.join(self.root, relative)
        if os.path.exists(path):
            return relative
        os.makedirs(os.path.dirname(path), exist_ok=True)
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

    def remove(self, token):
        """Drop the token's link; no error when there is none."""
        self._remove_names(token, keep=None)

    def _remove_names(self, token, keep):
        directory = os.path.join(self.root, token[:2])
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

    def iter_tokens(self):
        """Every token that has a link."""
        for directory, _subdirs, files in os.walk(self.root):
            yield from {name.split("~")[0] for name in files if not name.startswith(".")}


def _name(token, sha256, expires_at):
    name = f"{token}~{sha256[:16]}"
    return name if expires_at is None else f"{name}~{calendar.timegm(expires_at.utctimetuple())}"
