"""Per-image hard links to public images' blobs: what nginx's fast path serves.

nginx reuses a decision of the check for up to a second or two (its cache has
whole-second granularity). Making an image private, deleting it or replacing
its bytes removes or swaps its link at once, so a reused decision can only
find the link gone and fall back to the full check: those changes take effect
on the very next request. Only public images have a link. Links live beside
the blobs (same filesystem), so a link costs a directory entry, not a copy.
"""

import os
import tempfile


class LinkIndex:
    """links/{token[:2]}/{token} -> the blob's inode."""

    def __init__(self, root, blob_path):
        self.root = os.path.abspath(root)
        self.blob_path = blob_path

    def relative_path(self, token):
        """The link's path under the root, as nginx's alias appends it."""
        return f"{token[:2]}/{token}"

    def _path(self, token):
        return os.path.join(self.root, token[:2], token)

    def add(self, token, sha256):
        """Point the token's link at the blob, replacing any previous one atomically."""
        path = self._path(token)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        os.close(fd)
        os.unlink(tmp)
        try:
            os.link(self.blob_path(sha256), tmp)
            os.replace(tmp, path)
        except FileNotFoundError:
            # No blob on disk (yet): without a link the full check serves it.
            self.remove(token)

    def remove(self, token):
        """Drop the token's link; no error when there is none."""
        try:
            os.unlink(self._path(token))
        except FileNotFoundError:
            pass

    def iter_tokens(self):
        """Every token that has a link."""
        for directory, _subdirs, files in os.walk(self.root):
            for name in files:
                if not name.startswith("."):
                    yield name
