"""Completion webhooks: a signed POST of the instance's summary, retried with backoff, every attempt
recorded on the instance.

Signature: `X-Stepflow-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the
timestamp in `X-Stepflow-Timestamp` (Unix seconds); receivers recompute it and reject old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.core.times import iso
from chalicelib.outbound import dumps

BACKOFF_SECONDS = (10, 30, 120, 600, 3600)  # after attempts 1..5; attempt 6 is the last


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return "v1=" + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def summary_of(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "definition_name", "version", "status", "created_at", "completed_at", "tenant_id", "correlation_id",
            "origin_instance", "origin_zone", "origin_tenant_id", "origin_reference", "error")
    return {"type": "instance.ended", **{k: record.get(k) for k in keys}, "result": record.get("output")}


class Notifier:
    def __init__(self, store: Any, post: Callable[[str, bytes, dict[str, str]], int],
                 secret_for: Callable[[str | None], bytes | None], now: Callable[[], datetime],
                 backoff: tuple[float, ...] = BACKOFF_SECONDS,
                 observe: Callable[[str | None, bool, bool], None] | None = None):
        self._store = store
        self._observe = observe  # (tenant, delivered, given up): the webhook metrics
        self._post = post
        self._secret_for = secret_for
        self._now = now
        self.backoff = backoff

    def notify(self, record: dict[str, Any]) -> bool:
        """One delivery attempt; schedules the next one when it fails and attempts remain."""
        attempts = list(record.get("notifications") or [])
        if record.get("notify_state") == "open":
            # Claim the due attempt so two overlapping sweeps cannot both send it.
            lease = iso(self._now() + timedelta(seconds=60))
            try:
                self._store.update(record["id"], {"next_notify_at": lease},
                                   expect={"next_notify_at": record["next_notify_at"]})
            except TransitionRefused:
                return False
        body = dumps(summary_of(record))
        now = self._now()
        timestamp = int(now.timestamp())
        secret = self._secret_for(record.get("tenant_id"))
        attempt: dict[str, Any] = {"attempt": len(attempts) + 1, "at": iso(now), "url": record["webhook_url"]}
        ok = False
        if secret is None:
            attempt["error"] = "no signing secret is configured (STEPFLOW_WEBHOOK_SECRET)"
        else:
            headers = {"X-Stepflow-Timestamp": str(timestamp), "X-Stepflow-Signature": signature(secret, timestamp, body),
                       "X-Stepflow-Attempt": str(attempt["attempt"]), "User-Agent": "Stepflow-Webhook/1"}
            try:
                code = self._post(record["webhook_url"], body, headers)
                attempt["status_code"] = code
                ok = 200 <= code < 300
                if not ok:
                    attempt["error"] = f"the receiver answered {code}"
            except OSError as exc:
                attempt["error"] = f"could not deliver: {type(exc).__name__}"
        attempt["ok"] = ok
        attempts.append(attempt)
        changes: dict[str, Any] = {"notifications": attempts, "notify_state": None, "next_notify_at": None}
        if not ok and len(attempts) <= len(self.backoff):
            changes["notify_state"] = "open"
            changes["next_notify_at"] = iso(now + timedelta(seconds=self.backoff[len(attempts) - 1]))
        self._store.update(record["id"], changes)
        if self._observe is not None:
            self._observe(record.get("tenant_id"), ok, not ok and changes["notify_state"] is None)
        return ok
