"""The contract every blob store keeps.

Blobs are named by the SHA-256 (hex) of their bytes and never change once
written. Vendor errors stop at this boundary: a missing blob is
`FileNotFoundError`, an unreachable store is `StorageUnavailable`.
"""

import abc

from goodeye.errors import ServiceUnavailable


class StorageUnavailable(ServiceUnavailable):
    """The blob store cannot be reached or refused the operation."""

    default_message = "The blob store is unavailable; retry shortly."


class BlobStorage(abc.ABC):
    """Content-addressed, immutable blobs."""

    @abc.abstractmethod
    def put(self, sha256, data, content_type):
        """Store `data` under `sha256` atomically; a partial blob is never visible. Idempotent."""

    @abc.abstractmethod
    def exists(self, sha256):
        """Whether the blob is stored."""

    @abc.abstractmethod
    def open(self, sha256):
        """A readable binary file object of the blob; FileNotFoundError when missing."""

    @abc.abstractmethod
    def delete(self, sha256):
        """Remove the blob; no error when it is already gone."""

    @abc.abstractmethod
    def iter_blobs(self):
        """Yield (sha256, modified_epoch_seconds) for every stored blob."""

    @abc.abstractmethod
    def accel_target(self, sha256):
        """The tail of the internal nginx URI that streams the blob: `local/...` or `s3/...`.

        The serving layer prefixes it with `/_goodeye/`; nginx's internal
        locations (goodeye/nginx/goodeye.conf.j2) map each kind to a file or a proxy.
        """

    def remove_partial_writes(self, older_than_epoch):
        """Remove what writes cut short by a crash left behind, older than the given time; the count."""
        return 0

    @abc.abstractmethod
    def check(self):
        """Raise StorageUnavailable unless the store is reachable and writable."""
