"""Serving tokens that can be told from forgeries without a query.

A token is 16 random bytes from `secrets` (the unguessable part, unrelated to
any id) followed by 8 bytes of HMAC-SHA256 over them, base64url-encoded: 32
characters. A token whose tag does not match was never issued here, so the
check answers 404 without touching the database. The key lives in the
database (`server_secret`), so every node of a deployment shares it.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
import threading

from goodeye.models import ServerSecret

RANDOM_BYTES = 16
TAG_BYTES = 8


class TokenSigner:
    """Issues and recognises serving tokens; the key is read from the database on first use."""

    def __init__(self):
        self._key = None
        self._lock = threading.Lock()

    def _mac_key(self):
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = bytes.fromhex(ServerSecret.get(ServerSecret.name == "token_mac").value)
        return self._key

    def _tag(self, random_part):
        return hmac.new(self._mac_key(), random_part, hashlib.sha256).digest()[:TAG_BYTES]

    def new_token(self):
        """A fresh token: 128 random bits and their tag."""
        random_part = secrets.token_bytes(RANDOM_BYTES)
        return base64.urlsafe_b64encode(random_part + self._tag(random_part)).decode().rstrip("=")

    def is_genuine(self, token):
        """Whether this deployment could have issued `token`."""
        if len(token) != 32:
            return False
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return False
        if len(raw) != RANDOM_BYTES + TAG_BYTES:
            return False
        return hmac.compare_digest(raw[RANDOM_BYTES:], self._tag(raw[:RANDOM_BYTES]))
