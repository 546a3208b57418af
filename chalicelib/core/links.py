"""Signed one-click decision links: what a link says (task, decision, whose, until when, a nonce) and the
HMAC that proves the service wrote it. No task token and no stored secret is in a link."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

DECISIONS = ("approve", "reject")
DEFAULT_SECONDS = 3 * 24 * 3600
MAX_SECONDS = 30 * 24 * 3600
MAX_LINK = 1024  # a link's token is far shorter; longer is not one of ours, and is not parsed


class LinkRefused(Exception):
    """The link is not one to act on: `kind` is tampered or expired; the message says why."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Link:
    task_id: str
    decision: str  # approve | reject
    decider: str  # whose decision it is (the identity the decision carries)
    expires_at: int  # epoch seconds
    nonce: str  # spends the link: kept with the decision it made
    minted_by: str | None

    @property
    def approved(self) -> bool:
        return self.decision == "approve"


def new_nonce() -> str:
    return secrets.token_urlsafe(12)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def sign(key: bytes, link: Link) -> str:
    """The token of a link's URL: base64url(JSON of its fields) '.' base64url(HMAC-SHA256 of that)."""
    claims = {"t": link.task_id, "d": link.decision, "w": link.decider, "e": link.expires_at, "n": link.nonce,
              "m": link.minted_by}
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_mac(key, payload)}"


def verify(key: bytes, token: str, now: int) -> Link:
    """The link a token holds, when its signature is ours and it has not expired (LinkRefused otherwise).

    The signature is checked before anything in the token is read, in constant time."""
    tampered = LinkRefused("tampered", "this is not a valid decision link: its signature does not match "
                                       "(it was altered, or not made by this service); nothing was changed")
    if not isinstance(token, str) or len(token) > MAX_LINK or token.count(".") != 1:
        raise tampered
    payload, mac = token.split(".")
    if not hmac.compare_digest(_mac(key, payload), mac):
        raise tampered
    try:
        claims: dict[str, Any] = json.loads(_unb64(payload))
        link = Link(str(claims["t"]), str(claims["d"]), str(claims["w"]), int(claims["e"]), str(claims["n"]),
                    claims.get("m"))
    except (ValueError, KeyError, TypeError):
        raise tampered from None
    if link.decision not in DECISIONS:
        raise tampered
    if now >= link.expires_at:
        raise LinkRefused("expired", "this decision link has expired; nothing was changed "
                                     "(ask for a new one, or decide in the task inbox)")
    return link
