"""Blobs as objects in any S3-compatible store (AWS, MinIO, ...), through boto3.

Keys mirror the local layout: `{prefix}ab/cd/abcd...`. Every botocore and
boto3 error stops here: a missing object is FileNotFoundError, anything else
StorageUnavailable (503 `service_unavailable`).
"""

import contextlib
import functools
import io
import re
import time
from urllib.parse import urlsplit

import boto3
import boto3.exceptions
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from goodeye.config import ConfigError
from goodeye.storage.interface import BlobStorage, StorageUnavailable

_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_KEY_TAIL = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\Z")
# The prefix travels in the X-Accel-Redirect path, which nginx unescapes once:
# characters that never need escaping keep that path and the signed path equal.
_PREFIX = re.compile(r"^[A-Za-z0-9._/-]*\Z")
MULTIPART_BYTES = 8 * 1024 * 1024


@contextlib.contextmanager
def _converted(action):
    """Turn vendor errors into the storage contract's errors."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        if str(error.get("Code")) in _MISSING_CODES:
            raise FileNotFoundError(action) from None
        raise StorageUnavailable(f"The blob store refused to {action}: {error.get('Code') or 'error'}.") from None
    except (botocore.exceptions.BotoCoreError, boto3.exceptions.Boto3Error) as exc:
        raise StorageUnavailable(f"The blob store is unreachable ({exc.__class__.__name__}); retry shortly.") from None


class _ObjectStream(io.RawIOBase):
    """An object's body whose read errors are converted like every other call."""

    def __init__(self, body):
        super().__init__()
        self._body = body

    def readable(self):
        return True

    def read(self, size=-1):
        with _converted("read the blob"):
            return self._body.read(None if size is None or size < 0 else size)

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self):
        if not self.closed:
            self._body.close()
        super().close()


class S3Storage(BlobStorage):
    """Content-addressed objects in one bucket; nginx streams them through short-lived presigned URLs."""

    def __init__(self, bucket, *, endpoint_url=None, region="us-east-1", prefix="", presign_seconds=300, timeout_seconds=3):
        if not bucket:
            raise ConfigError("GOODEYE_S3_BUCKET is required when GOODEYE_STORAGE=s3")
        if not _PREFIX.match(prefix):
            raise ConfigError("GOODEYE_S3_PREFIX may hold only letters, digits, '.', '_', '-' and '/'")
        if presign_seconds < 2:
            raise ConfigError("GOODEYE_S3_PRESIGN_SECONDS must be at least 2")
        self.bucket = bucket
        self.prefix = prefix
        self.presign_seconds = presign_seconds
        config = Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            # An outage must answer 503 within a few seconds, not hang a worker.
            connect_timeout=timeout_seconds,
            read_timeout=timeout_seconds,
            retries={"mode": "standard", "max_attempts": 2},
            # boto3's default CRC checksums are refused by some S3-compatible stores.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # Credentials come the standard boto3 way (AWS_* variables, profile, instance role).
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, region_name=region, config=config)
        self.transfer = TransferConfig(multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES, max_concurrency=4)
        self._presigned_in_window = functools.lru_cache(maxsize=4096)(self._presign)

    @classmethod
    def from_settings(cls, settings):
        """The store the GOODEYE_S3_* settings describe."""
        return cls(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            prefix=settings.s3_prefix,
            presign_seconds=settings.s3_presign_seconds,
            timeout_seconds=settings.s3_timeout_seconds,
        )

    def key(self, sha256):
        """The object key of a blob."""
        return f"{self.prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def put(self, sha256, data, content_type):
        if self.exists(sha256):
            return
        # A PUT (or a completed multipart upload) appears whole or not at all.
        with _converted("store the blob"):
            self.client.upload_fileobj(
                io.BytesIO(data), self.bucket, self.key(sha256),
                ExtraArgs={"ContentType": content_type}, Config=self.transfer,
            )

    def exists(self, sha256):
        try:
            with _converted("look up the blob"):
                self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except FileNotFoundError:
            return False
        return True

    def open(self, sha256):
        with _converted("read the blob"):
            return _ObjectStream(self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))["Body"])

    def delete(self, sha256):
        with _converted("delete the blob"):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(sha256))

    def iter_blobs(self):
        paginator = self.client.get_paginator("list_objects_v2")
        with _converted("list the blobs"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", ()):
                    # Only keys of our own layout: the sweeper deletes what this yields.
                    match = _KEY_TAIL.match(item["Key"][len(self.prefix):])
                    if match and match.group(3).startswith(match.group(1) + match.group(2)):
                        yield match.group(3), item["LastModified"].timestamp()

    def _presign(self, sha256, _window):
        with _converted("sign a download"):
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self.key(sha256)}, ExpiresIn=self.presign_seconds
            )

    def presigned_url(self, sha256):
        """A presigned GET URL valid for at least half of GOODEYE_S3_PRESIGN_SECONDS."""
        # Signing costs more than the rest of the check; a URL is reused within
        # its window, so it always has at least half its lifetime left.
        return self._presigned_in_window(sha256, int(time.time() // (self.presign_seconds // 2)))

    def accel_target(self, sha256):
        url = urlsplit(self.presigned_url(sha256))
        return f"s3/{url.scheme}/{url.netloc}{url.path}?{url.query}"

    def check(self):
        try:
            with _converted("open the bucket"):
                self.client.head_bucket(Bucket=self.bucket)
        except FileNotFoundError:
            raise StorageUnavailable(f"The bucket {self.bucket!r} does not exist.") from None
