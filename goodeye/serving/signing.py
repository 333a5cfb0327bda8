"""Signed serving URLs: a private image (or one of its variants) for anyone holding the URL, until `expires`.

The signature is HMAC-SHA256, truncated to 128 bits and base64url-encoded, over
the serving path's token, every query parameter that changes the bytes (`w`,
`h`, `fit`, `fm`, in that order, as written in the URL) and `expires` (Unix
seconds, as written). The message is a JSON array, so no choice of values can
make two different URLs sign alike. The key is the project's own secret
(table `signing_key`), read in the same query as the image on every check and
never cached, so rotating it takes effect on the next check. A signed URL
carries exactly the parameters it was signed with: any other parameter, or
one given twice, makes it a different URL (403 `invalid_signature`).
"""

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timezone

from goodeye.db import is_sqlite
from goodeye.errors import InvalidRequest, InvalidSignature, SignatureExpired
from goodeye.models import SigningKey, utcnow
from goodeye.parsing import refuse_unknown_fields

# The parameters that change the bytes, in the order they are signed and written.
VARIANT_PARAMS = ("w", "h", "fit", "fm")
SIGNED_URL_PARAMS = frozenset((*VARIANT_PARAMS, "expires", "signature"))
# Up to 12 digits: far beyond any real expiry, far below what a datetime or a float would mangle.
EXPIRES_PATTERN = re.compile(r"^[0-9]{1,12}\Z")
SIGNATURE_BYTES = 16
# What a signing request may ask for; the serving URL itself decides what the values render.
MAX_VARIANT_SIDE = 8192
VARIANT_CHOICES = {"fit": ("scale-down", "cover"), "fm": ("auto", "webp", "avif", "jpeg", "png")}
MAX_EXPIRES_IN = 7 * 24 * 3600
DEFAULT_EXPIRES_IN = 3600


@dataclass(frozen=True)
class SignedQuery:
    """The signed parts of a serving URL's query."""

    variant: tuple
    expires: int
    expires_text: str
    signature: str


def is_signed(args):
    """Whether a serving URL's query asks for the signed check."""
    return "signature" in args or "expires" in args


def parse_signed_query(args):
    """The SignedQuery of a request's args (a MultiDict); InvalidSignature or InvalidRequest when malformed."""
    for name in args:
        if name not in SIGNED_URL_PARAMS:
            raise InvalidSignature("The signature does not cover every parameter of this URL.")
        if len(args.getlist(name)) > 1:
            raise InvalidSignature("A signed URL names each parameter once.")
    expires = args.get("expires")
    if expires is not None and not EXPIRES_PATTERN.match(expires):
        raise InvalidRequest("expires must be a Unix time in whole seconds.")
    signature = args.get("signature")
    if not signature or expires is None:
        raise InvalidSignature("A signed URL carries both expires and signature.")
    variant = tuple((name, args[name]) for name in VARIANT_PARAMS if name in args)
    return SignedQuery(variant, int(expires), expires, signature)


def parse_sign_request(body):
    """A signing request's (expires_in, variant); InvalidRequest for anything else."""
    refuse_unknown_fields(body, {"expires_in", *VARIANT_PARAMS})
    expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise InvalidRequest(f"expires_in must be a whole number of seconds from 1 to {MAX_EXPIRES_IN}.")
    variant = []
    for name in VARIANT_PARAMS:
        value = body.get(name)
        if value is None:
            continue
        if name in ("w", "h"):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VARIANT_SIDE:
                raise InvalidRequest(f"{name} must be a whole number of pixels from 1 to {MAX_VARIANT_SIDE}.")
        elif value not in VARIANT_CHOICES[name]:
            raise InvalidRequest(f"{name} must be one of {', '.join(VARIANT_CHOICES[name])}.")
        variant.append((name, str(value)))
    return expires_in, tuple(variant)


def compute_signature(secret_hex, token, variant, expires_text):
    """The signature of a serving URL's token, variant parameters and expiry under a project's secret."""
    message = json.dumps(["v1/i", token, [list(pair) for pair in variant], expires_text], separators=(",", ":"))
    digest = hmac.new(bytes.fromhex(secret_hex), message.encode(), hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def verify(secret_hex, token, query, now=None):
    """Refuse a signature that does not match (403 invalid_signature), then one that has expired (403 signature_expired)."""
    expected = compute_signature(secret_hex, token, query.variant, query.expires_text) if secret_hex else ""
    # Compared in constant time, as bytes: a forged signature may hold any character.
    if not hmac.compare_digest(expected.encode(), query.signature.encode("utf-8", "surrogatepass")) or not expected:
        raise InvalidSignature()
    if (now or time.time()) >= query.expires:
        raise SignatureExpired()


def signed_cache_control(image, expires, now):
    """`private, max-age=N` as of `now` (naive UTC), N no more than the seconds left on the signature and on the image's TTL."""
    max_age = expires - now.replace(tzinfo=timezone.utc).timestamp()
    if image.expires_at is not None:
        max_age = min(max_age, (image.expires_at - now).total_seconds())
    return f"private, max-age={max(0, int(max_age))}"


def project_secret(project_id):
    """The project's signing secret, made on first use."""
    SigningKey.insert(project=project_id, secret=secrets.token_hex(32)).on_conflict_ignore().execute()
    return SigningKey.get(SigningKey.project == project_id).secret


def rotate_secret(project_id):
    """Give the project a new signing secret; every URL signed before stops working. Returns when."""
    now = utcnow()
    secret = secrets.token_hex(32)
    (
        SigningKey.insert(project=project_id, secret=secret, rotated_at=now)
        .on_conflict(
            # SQLite's upsert must name the conflicting key; MySQL's must not.
            conflict_target=[SigningKey.project] if is_sqlite() else None,
            update={SigningKey.secret: secret, SigningKey.rotated_at: now},
        )
        .execute()
    )
    return now
