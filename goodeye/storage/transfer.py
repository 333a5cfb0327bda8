"""Copy every referenced blob from one store to another, verifying each by its SHA-256.

Safe to run while the service serves (it only reads the source, and writes
whole blobs to the target) and safe to run again: a blob already in the
target is kept when its bytes hash to its name, and copied again otherwise.
"""

import hashlib
from dataclasses import dataclass, field

from goodeye.models import Blob

@dataclass
class MigrationReport:
    """How many blobs ended each way, and the names of those that need an operator."""

    copied: int = 0
    present: int = 0
    gone: int = 0
    missing: list = field(default_factory=list)
    corrupt: list = field(default_factory=list)

    @property
    def ok(self):
        """Whether every referenced blob is now in the target."""
        return not self.missing and not self.corrupt

    def as_dict(self):
        """A JSON-ready summary."""
        return {
            "copied": self.copied, "present": self.present, "gone": self.gone,
            "missing": self.missing, "corrupt": self.corrupt, "ok": self.ok,
        }


def referenced_blobs():
    """(sha256, content_type) of every blob row, in a stable order."""
    return list(Blob.select(Blob.sha256, Blob.content_type).order_by(Blob.sha256).tuples())


def _read_verified(storage, sha256):
    """The blob's bytes if they hash to its name; None when they do not; FileNotFoundError when absent."""
    with storage.open(sha256) as stream:
        data = stream.read()
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


def _still_referenced(sha256):
    return Blob.select().where(Blob.sha256 == sha256).exists()


def copy_blob(source, target, sha256, content_type):
    """Make the target hold this blob, verified: 'copied', 'present', 'gone', 'missing' or 'corrupt'."""
    try:
        if _read_verified(target, sha256) is not None:
            return "present"
        # Wrong bytes under a content address can only be damage: replace them.
        target.delete(sha256)
    except FileNotFoundError:
        pass
    try:
        data = _read_verified(source, sha256)
    except FileNotFoundError:
        # Deleted while we ran (its row is gone too) is fine; a row without bytes is not.
        return "missing" if _still_referenced(sha256) else "gone"
    if data is None:
        return "corrupt"
    target.put(sha256, data, content_type)
    if _read_verified(target, sha256) is None:
        return "corrupt"
    return "copied"


def migrate_blobs(source, target, blobs, progress=None):
    """Copy `blobs` ((sha256, content_type) pairs) from source to target; a MigrationReport."""
    report = MigrationReport()
    for sha256, content_type in blobs:
        outcome = copy_blob(source, target, sha256, content_type)
        if outcome in ("missing", "corrupt"):
            getattr(report, outcome).append(sha256)
        else:
            setattr(report, outcome, getattr(report, outcome) + 1)
        if progress is not None:
            progress(1)
    return report
