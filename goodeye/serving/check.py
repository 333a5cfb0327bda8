"""Find the image a URL names and decide whether the caller may have its bytes.

The lookup is one indexed query for a few columns (with a key, the key's row
comes in the same query), its SQL built once per process; nothing here builds
ORM objects.
"""

import re
from dataclasses import dataclass, fields
from datetime import datetime

from peewee import JOIN

from goodeye.db import Prepared
from goodeye.errors import AuthRequired, ImageNotFound
from goodeye.identity.service import authenticate, key_columns, key_digest, verified_project
from goodeye.models import ApiKey, Image, SigningKey, utcnow
from goodeye.serving.signing import verify

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}\Z")

SERVABLE_COLUMNS = (
    Image.id, Image.token, Image.project, Image.sha256, Image.content_type, Image.size_bytes, Image.visibility,
    Image.expires_at, Image.updated_at,
)

_BY_TOKEN = Prepared(lambda p: Image.select(*SERVABLE_COLUMNS).where(Image.token == p.token))
# The image and its project's signing secret.
_WITH_SIGNING_KEY = Prepared(
    lambda p: Image.select(*SERVABLE_COLUMNS, SigningKey.secret)
    .join(SigningKey, JOIN.LEFT_OUTER, on=(SigningKey.project == Image.project))
    .where(Image.token == p.token)
)
# The image and the API key with that digest (NULLs when there is no such key).
_WITH_KEY = Prepared(
    lambda p: Image.select(*SERVABLE_COLUMNS, *key_columns())
    .join(ApiKey, JOIN.LEFT_OUTER, on=(ApiKey.key_hash == p.digest))
    .where(Image.token == p.token)
)


@dataclass(frozen=True, slots=True)
class ServableImage:
    """The few columns the serving path needs."""

    id: str
    token: str
    project_id: int
    sha256: str
    content_type: str
    size_bytes: int
    visibility: str
    expires_at: datetime | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row):
        """Build from the columns of SERVABLE_COLUMNS, in order."""
        # SQLite hands back the stored text of a datetime when it is read outside the ORM.
        return cls(
            *(
                datetime.fromisoformat(value) if isinstance(value, str) and column.name in ("expires_at", "updated_at") else value
                for column, value in zip(fields(cls), row)
            )
        )

    @classmethod
    def from_image(cls, image):
        """Build from an Image model row."""
        return cls(**{field.name: getattr(image, field.name) for field in fields(cls)})

    def expired(self):
        """Whether its TTL has run out."""
        return self.expires_at is not None and self.expires_at <= utcnow()



def find_by_token(tokens, token):
    """The unexpired image a serving token names; tokens this deployment never issued are refused without a query."""
    if not TOKEN_PATTERN.match(token) or not tokens.is_genuine(token):
        raise ImageNotFound()
    row = _BY_TOKEN.one(token=token)
    if row is None or (image := ServableImage.from_row(row)).expired():
        raise ImageNotFound()
    return image


def find_signed(tokens, token, query):
    """The image a signed URL names, if the signature holds; the image and its project's secret come in one query."""
    if not TOKEN_PATTERN.match(token) or not tokens.is_genuine(token):
        raise ImageNotFound()
    row = _WITH_SIGNING_KEY.one(token=token)
    if row is None or (image := ServableImage.from_row(row[: len(SERVABLE_COLUMNS)])).expired():
        raise ImageNotFound()
    verify(row[-1], token, query)
    return image


def find_for_key(tokens, token, key):
    """The image a token names, if `key` may have it; the key and the image come in one query.

    A bad key is refused (401) whatever the token; a private image of another
    project answers like a missing one.
    """
    digest = key_digest(key)
    row = None
    if TOKEN_PATTERN.match(token) and tokens.is_genuine(token):
        row = _WITH_KEY.one(token=token, digest=digest)
    if row is None:
        authenticate(key)  # only to tell a bad key (401) from a missing image
        raise ImageNotFound()
    project_id = verified_project(row[len(SERVABLE_COLUMNS):], digest)
    image = ServableImage.from_row(row[: len(SERVABLE_COLUMNS)])
    if image.expired() or (image.visibility != "public" and image.project_id != project_id):
        raise ImageNotFound()
    return image


def find_for_request(tokens, token, key):
    """The image a serving URL names, for a caller with `key` (None when anonymous)."""
    if key is not None:
        return find_for_key(tokens, token, key)
    image = find_by_token(tokens, token)
    if image.visibility != "public":
        raise AuthRequired()
    return image


def cache_control(settings, image, now=None):
    """Cache-Control for an image: bounded public caching, never for private images."""
    if image.visibility != "public":
        return "private, no-store"
    max_age = settings.public_max_age
    if image.expires_at is not None:
        remaining = int(((image.expires_at - (now or utcnow())).total_seconds()))
        max_age = max(0, min(max_age, remaining))
    return f"public, max-age={max_age}"
