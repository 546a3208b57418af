"""The pure delivery checks of webhook triggers: both signing schemes, the replay window, the replay id,
rotation's second key, forwarded headers and rate windows."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from chalicelib.core import hooks

KEY = hooks.signing_key(b"d" * 32, "trg-1", "nonce-1")
OLD = hooks.signing_key(b"d" * 32, "trg-1", "nonce-0")
NOW = 1_800_000_000
BODY = b'{"order": 7}'


def stepflow(key: bytes, at: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return {"X-Stepflow-Timestamp": str(at),
            "X-Stepflow-Signature": "v1=" + hmac.new(key, f"{at}.".encode() + body, hashlib.sha256).hexdigest()}


def standard(key: bytes, msg_id: str = "msg_1", at: int = NOW, body: bytes = BODY) -> dict[str, str]:
    digest = hmac.new(key, f"{msg_id}.{at}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": str(at), "webhook-signature": "v1," + base64.b64encode(digest).decode()}


def test_the_secret_is_the_signing_key_in_standard_webhooks_form():
    secret = hooks.secret_text(KEY)
    assert secret.startswith("whsec_") and base64.b64decode(secret.removeprefix("whsec_")) == KEY
    assert hooks.signing_key(b"d" * 32, "trg-1", "nonce-1") == KEY  # recomputed, never stored
    assert hooks.signing_key(b"e" * 32, "trg-1", "nonce-1") != KEY  # needs the server's key
    assert hooks.key_hash("hk_abc") == hashlib.sha256(b"hk_abc").hexdigest()


def test_both_schemes_verify_and_name_a_replay_id_their_signature_covers():
    signed = stepflow(KEY)
    delivery = hooks.verify(signed, BODY, [KEY], NOW)
    assert delivery == hooks.Delivery(signed["X-Stepflow-Signature"][3:], NOW, "stepflow")
    assert hooks.verify(standard(KEY), BODY, [KEY], NOW + 299) == hooks.Delivery("msg_1", NOW, "standard")
    # Several signatures (a sender mid-rotation): one matching is enough; so is the old key within overlap.
    many = standard(OLD)
    many["webhook-signature"] = "v1,bm9wZQ== " + many["webhook-signature"]
    assert hooks.verify(many, BODY, [KEY, OLD], NOW).replay_id == "msg_1"


@pytest.mark.parametrize("headers,body,message", [
    ({}, BODY, "not signed"),
    (stepflow(OLD), BODY, "does not match"),
    (stepflow(KEY), b'{"order": 8}', "does not match"),
    (stepflow(KEY, at=NOW - 301), BODY, "more than 300 seconds"),
    (stepflow(KEY, at=NOW + 301), BODY, "more than 300 seconds"),
    ({**stepflow(KEY), "X-Stepflow-Timestamp": "-1"}, BODY, "Unix seconds"),
    ({**stepflow(KEY), "X-Stepflow-Timestamp": "9" * 20}, BODY, "Unix seconds"),
    ({**standard(KEY), "webhook-id": "msg_2"}, BODY, "does not match"),
    ({**standard(KEY), "webhook-id": ""}, BODY, "webhook-id"),
    ({**standard(KEY), "webhook-signature": "v2," + standard(KEY)["webhook-signature"][3:]}, BODY, "does not match"),
    ({k: v for k, v in standard(KEY).items() if k != "webhook-timestamp"}, BODY, "Unix seconds"),
])
def test_what_is_refused(headers, body, message):
    with pytest.raises(hooks.SignatureRefused, match=message):
        hooks.verify(headers, body, [KEY], NOW)


def test_forwarded_headers_never_carry_a_credential():
    sent = {"Content-Type": "application/json", "User-Agent": "shop/1", "Authorization": "Bearer t",
            "X-Shop-Event": "paid", "X-Other": "no", "Cookie": "c", "X-Long": "x" * 5000}
    assert hooks.forwarded_headers(sent, ["x-shop-event", "authorization", "X-Long"]) == {
        "content-type": "application/json", "user-agent": "shop/1", "x-shop-event": "paid", "x-long": "x" * 1000}
    assert hooks.header_name_issue("X-Shop-Event") is None
    assert "never forwarded" in (hooks.header_name_issue("Webhook-Signature") or "")
    assert hooks.header_name_issue("bad header") and hooks.header_name_issue(7)


def test_rate_windows_are_fixed_minutes():
    assert hooks.rate_window(120.0) == (2, 60)
    assert hooks.rate_window(150.5) == (2, 30)
    assert hooks.rate_window(179.9) == (2, 1)
