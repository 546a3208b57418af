"""Completion webhook retries on a local timer: what the delayed SQS message does on AWS, the runtime's
scheduler does here, handing the app's webhook_retry handler the same SQS-shaped event when it is due.

Retries run at the runtime's time scale (STEPFLOW_LOCAL_TIME_SCALE), as Wait states do: at 0.01 the
10 s, 30 s, 2 min, 10 min and 1 h backoff takes 0.1 s, 0.3 s, 1.2 s, 6 s and 36 s.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from chalicelib.aws.retry_queue import message_body
from chalicelib.core.times import parse_iso
from stepflow_local.runtime import LocalRuntime

LOG = logging.getLogger("stepflow_local")


def sqs_event(body: str, queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source hands a function for one message."""
    digest = hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
    return {"Records": [{
        "messageId": digest, "receiptHandle": f"local-{digest}", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {}, "md5OfBody": digest, "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
        "awsRegion": region}]}


class LocalRetryTimer:
    """RetryTimer (chalicelib/service/notifications.py) on the runtime's scheduler: calls `handler` with
    the retry's SQS event once it is due by the wall clock, the clock the due time was taken from.
    `given` keeps every (instance id, attempt, due) it was set for, newest last (bounded)."""

    def __init__(self, runtime: LocalRuntime, handler: Any, queue_name: str, time_scale: float = 1.0,
                 keep: int = 1000):
        self.time_scale = time_scale
        self.given: list[tuple[str, int, datetime]] = []
        self._runtime = runtime
        self._handler = handler
        self._queue_arn = f"arn:aws:sqs:{runtime.region}:{runtime.account_id}:{queue_name}"
        self._keep = keep

    def schedule(self, instance_id: str, attempt: int, due: datetime) -> None:
        self.given = [*self.given[-(self._keep - 1):], (instance_id, attempt, due)]
        event = sqs_event(message_body(instance_id, attempt, due), self._queue_arn, self._runtime.region)
        deadline = time.monotonic() + max(0.0, due.timestamp() - time.time())

        def fire() -> None:
            try:
                self._handler(event, None)
            except Exception:  # noqa: BLE001 - SQS would deliver it again later; the sweep does that here
                LOG.exception("webhook retry of %s failed; the sweep sends it", instance_id)

        self._runtime.scheduler.at(deadline, fire, name=f"webhook_retry {instance_id} #{attempt}")


def deliver_webhook_retries(app_module: Any, runtime: LocalRuntime, time_scale: float = 1.0) -> LocalRetryTimer:
    """Installs the local retry timer in the app's services, and sets it for every retry still open (a
    kept store's, from before a restart): each comes at its own due time, or now if that has passed."""
    services = app_module.services
    timer = LocalRetryTimer(runtime, app_module.webhook_retry, services.settings.webhook_retry_queue, time_scale)
    services.retry_timer = timer
    try:
        pending = services.instance_store.due_notifications("9999")  # every open one: ISO times sort as text
    except Exception:  # noqa: BLE001 - the sweep still sends them
        LOG.exception("could not read the open webhook retries; the sweep sends them")
        return timer
    for record in pending:
        attempt = len(record.get("notifications") or []) + 1
        due = parse_iso(record.get("next_notify_at") or datetime.now(UTC).isoformat())
        timer.schedule(record["id"], attempt, due)
    return timer
