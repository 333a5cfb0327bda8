"""Blobs as files under one directory: `blobs/ab/cd/abcd...`."""

import os
import tempfile

from goodeye.files import SERVED_FILE_MODE as BLOB_MODE, make_private_dir
from goodeye.storage.interface import BlobStorage, StorageUnavailable


class LocalStorage(BlobStorage):
    """Content-addressed files; written to a temp file in the same directory, then renamed."""

    def __init__(self, root):
        self.root = os.path.abspath(root)

    def path(self, sha256):
        """The file path of a blob."""
        return os.path.join(self.root, sha256[:2], sha256[2:4], sha256)

    def put(self, sha256, data, content_type):
        target = self.path(sha256)
        if os.path.exists(target):
            return
        directory = os.path.dirname(target)
        try:
            make_private_dir(directory)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                # Never world-readable (private images' bytes): nginx's workers run as
                # the app's user or root, or get the app's group (README "Files").
                os.chmod(tmp, BLOB_MODE)
                os.replace(tmp, target)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StorageUnavailable(f"Could not write the blob: {exc.strerror or exc}") from None

    def exists(self, sha256):
        return os.path.exists(self.path(sha256))

    def open(self, sha256):
        return open(self.path(sha256), "rb")

    def delete(self, sha256):
        try:
            os.unlink(self.path(sha256))
        except FileNotFoundError:
            pass

    def iter_blobs(self):
        for directory, _subdirs, files in os.walk(self.root):
            for name in files:
                if len(name) == 64 and not name.startswith("."):
                    try:
                        yield name, os.stat(os.path.join(directory, name)).st_mtime
                    except FileNotFoundError:
                        continue

    def remove_partial_writes(self, older_than_epoch):
        removed = 0
        for directory, _subdirs, files in os.walk(self.root):
            for name in files:
                path = os.path.join(directory, name)
                try:
                    if name.startswith(".tmp-") and os.stat(path).st_mtime < older_than_epoch:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def accel_target(self, sha256):
        return f"local/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def check(self):
        try:
            make_private_dir(self.root)
            if not os.access(self.root, os.W_OK):
                raise StorageUnavailable("The blob directory is not writable.")
        except OSError as exc:
            raise StorageUnavailable(f"The blob directory is unusable: {exc.strerror or exc}") from None
