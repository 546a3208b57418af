"""Opaque page cursors: the continuation key sealed (AES-GCM) and bound to the tenant and the query.

A listing's continuation key is DynamoDB's LastEvaluatedKey, which can be an item the page filtered
out, e.g. another tenant's task. So the payload is encrypted, not only signed: a client learns
nothing from a cursor, cannot forge or alter one, and a cursor issued to one tenant or for one query
(index and filters) is refused for another with a message that says which. The key is passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from typing import Any

VERSION = "c1"
MAX_CHARS = 2048
NONCE_BYTES = 12


class CursorError(ValueError):
    """A cursor that cannot be used for this request; the message says why (safe to show)."""


def derive_key(secret: bytes | str, purpose: str) -> bytes:
    """A 256-bit key for one purpose from a longer-lived secret (HMAC-SHA256 as the derivation)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, f"stepflow/{purpose}".encode(), hashlib.sha256).digest()


def _scope(query: dict[str, Any]) -> str:
    return json.dumps(query, sort_keys=True, separators=(",", ":"), default=str)


def encode(key: bytes, position: Any, *, tenant: str | None, query: dict[str, Any]) -> str | None:
    """The cursor for `position` (None at the end of the listing: no cursor)."""
    if not position:
        return None
    plain = json.dumps({"t": tenant, "q": _scope(query), "k": position}, separators=(",", ":")).encode()
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # loaded by the first listing, not at import

    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plain, VERSION.encode())
    return VERSION + "." + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def decode(key: bytes, cursor: str | None, *, tenant: str | None, query: dict[str, Any]) -> Any:
    """The position a cursor holds, or None without one; CursorError when it is not this caller's."""
    if not cursor:
        return None
    version, _, body = cursor.partition(".")
    if len(cursor) > MAX_CHARS or version != VERSION or not body:
        raise CursorError("cursor is not valid: use the next_cursor of a previous page, or start without it")
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], VERSION.encode())
        payload = json.loads(plain)
    except (binascii.Error, ValueError, InvalidTag):
        raise CursorError("cursor is not valid (it was altered, or issued by another deployment); "
                          "start without it") from None
    if payload.get("t") != tenant:
        raise CursorError("cursor was issued to another tenant; start without it")
    if payload.get("q") != _scope(query):
        raise CursorError("cursor belongs to a different query (its filters changed); start without it")
    return payload.get("k")
