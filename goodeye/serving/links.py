"""Per-image hard links to public images' blobs: what nginx's fast path serves.

nginx reuses a decision of the check for a while (goodeye/serving/decide.py:
up to an hour for an image without expiry). Making an image private, deleting
it or replacing its bytes removes or swaps its link at once, so a reused
decision can only find the link gone and fall back to the full check: those
changes take effect on the very next request. A link's name carries what the
decision's headers were made of: the bytes' hash (the ETag and Content-Type),
the expiry (Cache-Control) and the time of the image's last change
(Last-Modified, and whatever else changed: a filename the URL names). Any
change renames the link, and a decision kept from before
falls back the same way. Only public images have a link under the root.

Images with signed URLs have another under `signed/`, made when a URL is
signed and kept whatever the visibility (a signed URL works whatever the
visibility), so that nginx can serve a private image after a kept decision of
that exact signed URL; it is removed, renamed and swapped like the public one.
Links live beside the blobs (same filesystem), so a link costs a directory
entry, not a copy.

On S3 storage a node has no blob files to link to: CopyIndex keeps copies of
public images' blobs instead, under the same names, made and removed by the
node's follower (goodeye/serving/nodes.py), which every change waits for.
"""

import calendar
import os
import shutil
import tempfile

from goodeye.files import SERVED_FILE_MODE, make_private_dir

SIGNED_DIR = "signed"


class LinkIndex:
    """links/[signed/]{token[:2]}/{token}~{sha256[:16]}~m{last change}[~{expiry}][~v{variant's sha256}] -> the blob's inode.

    The last change is in epoch microseconds, the expiry in epoch seconds. The methods take the image (anything with its token,
    sha256, expires_at and updated_at).
    """

    # Whether images with signed URLs get a link under signed/.
    links_signed_urls = True

    def __init__(self, root, blob_path):
        self.root = os.path.abspath(root)
        self.blob_path = blob_path

    def relative_path(self, image, signed=False):
        """The image's link's path under the root, as nginx's alias appends it."""
        prefix = f"{SIGNED_DIR}/" if signed else ""
        return f"{prefix}{image.token[:2]}/{_name(image)}"

    def add(self, image, signed=False):
        """Point the image's link at its blob, replacing any previous one of its token atomically."""
        directory = self._directory(image.token, signed)
        name = _name(image)
        make_private_dir(directory)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        os.close(fd)
        os.unlink(tmp)
        try:
            os.link(self.blob_path(image.sha256), tmp)
            os.replace(tmp, os.path.join(directory, name))
        except FileNotFoundError:
            # No blob on disk (yet): without a link the full check serves it.
            name = None
        self._remove_names(directory, image.token, keep=name)

    def add_variant(self, image, variant_sha256):
        """Link a variant of the image (named after the image's link, removed with it); the relative path, None without a blob."""
        relative = f"{self.relative_path(image)}~v{variant_sha256}"
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

    def rename_to_current(self, image, signed=False):
        """Give the token's link of the image's bytes the name the image has now, if it was named otherwise
        (by a change made in bulk, or an older release); whether it did. A rename, unlike a new link,
        cannot bring back a link that a change (private, deleted, new bytes) removed meanwhile."""
        token = image.token
        directory = self._directory(token, signed)
        current = _name(image)
        try:
            names = os.listdir(directory)
            blob = os.stat(self.blob_path(image.sha256))
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

    def want(self, image):
        """Ask for a link of this served image: links of local blobs exist from the change that made the image public."""

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


class CopyIndex(LinkIndex):
    """Copies of public images' S3 blobs on this node's disk, named as links are, for nginx's fast path.

    Only the node's follower makes copies, of originals asked for by a request
    the app served (`want`); the app removes them as it removes links. Signed
    URLs and variants have none: the app serves them.
    """

    links_signed_urls = False

    def __init__(self, root, wants_dir):
        super().__init__(root, blob_path=None)
        self.wants_dir = wants_dir

    def add(self, image, signed=False):
        """Copies are made by the follower alone (`place`)."""

    def add_variant(self, image, variant_sha256):
        """Variants have no copies."""
        return None

    def rename_to_current(self, image, signed=False):
        """A copy named otherwise goes: the follower copies the image again when it is next asked for."""
        self._remove_names(self._directory(image.token, signed), image.token, keep=_name(image))
        return False

    def want(self, image):
        """Ask the follower for a copy of this image (it checks the image is public, as it is then)."""
        path = os.path.join(self.wants_dir, image.token)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except FileNotFoundError:
            make_private_dir(self.wants_dir)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))

    def take_wants(self):
        """The tokens asked for since the last call."""
        try:
            tokens = os.listdir(self.wants_dir)
        except FileNotFoundError:
            return []
        for token in tokens:
            os.unlink(os.path.join(self.wants_dir, token))
        return tokens

    def temporary_file(self):
        """A new file beside the copies, for a download to be placed: (file object, path)."""
        make_private_dir(self.root)
        fd, path = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        os.fchmod(fd, SERVED_FILE_MODE)
        return os.fdopen(fd, "wb"), path

    def place(self, image, downloaded):
        """Make the downloaded file the image's copy under its current name, replacing the token's others."""
        directory = self._directory(image.token, False)
        make_private_dir(directory)
        name = _name(image)
        os.replace(downloaded, os.path.join(directory, name))
        self._remove_names(directory, image.token, keep=name)

    def wipe(self):
        """Remove every copy (a node that may have missed changes starts from none)."""
        shutil.rmtree(self.root, ignore_errors=True)
        make_private_dir(self.root)


def _name(image):
    # The last change to the microsecond: a rename within a second changes no Last-Modified, but the URL it answers.
    changed = image.updated_at
    name = f"{image.token}~{image.sha256[:16]}~m{_epoch(changed)}{changed.microsecond:06d}"
    return name if image.expires_at is None else f"{name}~{_epoch(image.expires_at)}"


def _epoch(moment):
    return calendar.timegm(moment.utctimetuple())
