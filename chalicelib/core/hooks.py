"""Webhook trigger deliveries, pure: signing secrets from nonces, signature and replay-window checks (the
completion webhooks' scheme, and Standard Webhooks'), the input a delivery starts, and rate windows.

Two ways to sign a delivery, both HMAC-SHA256 with the trigger's signing key (the bytes base64-encoded
after `whsec_` in the secret, as Standard Webhooks libraries read it):
  Stepflow          X-Stepflow-Timestamp: <unix seconds>
                    X-Stepflow-Signature: v1=<hex HMAC(key, "<timestamp>.<body>")>
  Standard Webhooks webhook-id: <id>, webhook-timestamp: <unix seconds>,
                    webhook-signature: v1,<base64 HMAC(key, "<id>.<timestamp>.<body>")> (several, space-separated)
A delivery's replay id is what its signature covers and an attacker cannot change: the webhook-id, or
for the Stepflow scheme (whose headers name no id) the signature itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chalicelib.errors import StepflowError

SECRET_PREFIX = "whsec_"
KEY_PREFIX = "hk_"
TOLERANCE_SECONDS = 300  # a timestamp further than this from now, either way, is refused
RATE_WINDOW_SECONDS = 60
MAX_ID_CHARS = 255
# Always forwarded into the input (when sent); a trigger may name more. Never: what authenticates.
DEFAULT_HEADERS = ("content-type", "user-agent")
NEVER_FORWARDED = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key", "webhook-signature",
                             "x-stepflow-signature", "idempotency-key"})


class SignatureRefused(StepflowError):
    """The delivery is not signed by the trigger's secret, or not now (HTTP 401)."""


class RateLimited(StepflowError):
    """Over the trigger's rate limit; `retry_after` seconds until the next window (HTTP 429)."""

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Delivery:
    replay_id: str  # unique per delivery and covered by its signature
    timestamp: int
    scheme: str  # "stepflow" | "standard"


def key_hash(key: str) -> str:
    """What a trigger is looked up by: the key itself is never stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def signing_key(derivation_key: bytes, trigger_id: str, nonce: str) -> bytes:
    """The trigger's signing key: recomputed from the stored nonce and the server's derivation key, so the
    table alone holds no working secret."""
    return hmac.new(derivation_key, f"{trigger_id}.{nonce}".encode(), hashlib.sha256).digest()


def secret_text(key: bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(key).decode()


def _timestamp(raw: str | None, now: float, tolerance: int) -> int:
    if raw is None or not raw.isdigit() or len(raw) > 12:
        raise SignatureRefused("the timestamp header is missing or not Unix seconds")
    stamp = int(raw)
    if abs(now - stamp) > tolerance:
        raise SignatureRefused(f"the timestamp is more than {tolerance} seconds from now: sign the delivery again")
    return stamp


def verify(headers: Mapping[str, str], body: bytes, keys: Sequence[bytes], now: float,
           tolerance: int = TOLERANCE_SECONDS) -> Delivery:
    """The delivery when one of `keys` signed it within the window; SignatureRefused otherwise."""
    h = {k.lower(): v for k, v in headers.items()}
    if "webhook-signature" in h:
        msg_id = h.get("webhook-id") or ""
        if not 0 < len(msg_id) <= MAX_ID_CHARS or "." in msg_id:
            raise SignatureRefused(f"webhook-id must be 1 to {MAX_ID_CHARS} characters without '.'")
        raw = h.get("webhook-timestamp")
        stamp = _timestamp(raw, now, tolerance)
        signed = f"{msg_id}.{raw}.".encode() + body
        expected = [base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode() for k in keys]
        offered = [value for version, _, value in (p.partition(",") for p in h["webhook-signature"].split())
                   if version == "v1"]
        if _matches(offered[:10], expected):
            return Delivery(msg_id, stamp, "standard")
        raise SignatureRefused("the signature does not match")
    if "x-stepflow-signature" in h:
        raw = h.get("x-stepflow-timestamp")
        stamp = _timestamp(raw, now, tolerance)
        offered_sig = h["x-stepflow-signature"].strip()
        signed = f"{raw}.".encode() + body
        expected = ["v1=" + hmac.new(k, signed, hashlib.sha256).hexdigest() for k in keys]
        if _matches([offered_sig], expected):
            return Delivery(offered_sig[3:], stamp, "stepflow")
        raise SignatureRefused("the signature does not match")
    raise SignatureRefused("the delivery is not signed: send X-Stepflow-Timestamp and X-Stepflow-Signature, "
                           "or the Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature)")


def _matches(offered: Sequence[str], expected: Sequence[str]) -> bool:
    found = False
    for given in offered:
        for wanted in expected:  # every comparison made: the time taken says nothing about which matched
            found |= hmac.compare_digest(given.encode(), wanted.encode())
    return found


def forwarded_headers(headers: Mapping[str, str], extra: Sequence[str] = ()) -> dict[str, str]:
    """The request headers a delivery's input carries: the defaults and the trigger's own names, never
    a credential, each value at most 1,000 characters."""
    wanted = {*DEFAULT_HEADERS, *(n.lower() for n in extra)} - NEVER_FORWARDED
    return {k.lower(): v[:1000] for k, v in headers.items() if k.lower() in wanted}


def header_name_issue(name: object) -> str | None:
    """Why `name` cannot be forwarded, or None."""
    if not isinstance(name, str) or not 0 < len(name) <= 100 or not all(c.isalnum() or c in "-_" for c in name):
        return "a header name is 1 to 100 letters, digits, '-' or '_'"
    if name.lower() in NEVER_FORWARDED:
        return f"'{name}' authenticates requests and is never forwarded"
    return None


def rate_window(now: float) -> tuple[int, int]:
    """The fixed window `now` falls in, and the whole seconds until the next one (Retry-After)."""
    window = int(now // RATE_WINDOW_SECONDS)
    return window, max(1, math.ceil((window + 1) * RATE_WINDOW_SECONDS - now))
