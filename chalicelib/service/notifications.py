"""Completion webhooks: a signed POST of the instance's summary, retried with backoff on a timer, every
attempt recorded on the instance.

Signature: `X-Stepflow-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the
timestamp in `X-Stepflow-Timestamp` (Unix seconds); receivers recompute it and reject old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.core.times import iso, parse_iso
from chalicelib.outbound import dumps

BACKOFF_SECONDS = (10, 30, 120, 600, 3600)  # after attempts 1..5; attempt 6 is the last
# With a timer, the sweep leaves a due retry this long to the timer before it sends it itself: it only
# catches what the timer lost (an enqueue that failed, a process that died before enqueueing).
SWEEP_GRACE_SECONDS = 120
LEASE_SECONDS = 60  # how long a claimed attempt is held before a sweep may take it over

log = logging.getLogger("stepflow.notifications")


class RetryTimer(Protocol):
    """Calls back (Notifier.retry) for an instance's attempt at `due`, at least once, never before it.
    `time_scale` multiplies the backoff (1 on AWS; the local runtime's time scale locally)."""

    time_scale: float

    def schedule(self, instance_id: str, attempt: int, due: datetime) -> None: ...


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
                 observe: Callable[[str | None, bool, bool], None] | None = None,
                 timer: Callable[[], RetryTimer | None] = lambda: None):
        self._store = store
        self._timer = timer  # looked up per retry: the local runtime installs its timer after start
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
            lease = iso(self._now() + timedelta(seconds=LEASE_SECONDS))
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
        timer = self._timer()
        due: datetime | None = None
        if not ok and len(attempts) <= len(self.backoff):
            scale = timer.time_scale if timer is not None else 1.0
            due = now + timedelta(seconds=self.backoff[len(attempts) - 1] * scale)
            attempt["next_attempt_at"] = iso(due)
            changes["notify_state"] = "open"
            changes["next_notify_at"] = iso(due)
        # Recorded before the timer is set: a timer that fires finds the attempt it is for, and one that
        # could not be set (or a process that dies here) leaves an open, due record the sweep sends.
        self._store.update(record["id"], changes)
        if self._observe is not None:
            self._observe(record.get("tenant_id"), ok, not ok and changes["notify_state"] is None)
        if due is not None and timer is not None:
            try:
                timer.schedule(record["id"], len(attempts) + 1, due)
            except Exception:  # noqa: BLE001 - the attempt is recorded; the sweep sends the retry instead
                log.warning("could not set the timer of webhook attempt %s of %s; the sweep sends it",
                            len(attempts) + 1, record["id"])
        return ok

    def sweep_horizon(self, now: datetime) -> datetime:
        """Retries due by this time are the sweep's to send: all that are due without a timer; with one,
        those the timer should have sent a grace period ago (so the two rarely race for one)."""
        timer = self._timer()
        return now if timer is None else now - timedelta(seconds=SWEEP_GRACE_SECONDS * timer.time_scale)

    def retry(self, instance_id: str, attempt: int) -> str:
        """What a retry timer calls: sends attempt `attempt` of the instance's webhook if it is still the
        next one and due. A timer that fired early is set again for the rest (an exception here: the
        timer's message is retried). "sent", "failed", "waiting" or "stale" (nothing to do: sent already,
        by the sweep or a duplicate timer, or the instance is gone)."""
        record = self._store.get(instance_id)
        if (record is None or record.get("notify_state") != "open" or not record.get("webhook_url")
                or len(record.get("notifications") or []) + 1 != attempt):
            return "stale"
        due = parse_iso(record["next_notify_at"])
        if due > self._now():
            # Early (SQS delays 15 minutes at most), or held by another sender's lease: come back then.
            timer = self._timer()
            if timer is None:
                return "stale"
            timer.schedule(instance_id, attempt, due)
            return "waiting"
        return "sent" if self.notify(record) else "failed"
