"""Completion webhook retry timers on SQS: one message per retry, delayed until it is due (at most 15
minutes at a time: the webhook_retry function sets a longer one again for the rest when it arrives)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chalicelib.errors import Unavailable

MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds maximum


def delay_seconds(due: datetime, now: datetime) -> int:
    """The message delay for a retry due at `due`: never short of it (rounded up), at most SQS's maximum."""
    return max(0, min(MAX_DELAY_SECONDS, math.ceil((due - now).total_seconds())))


def message_body(instance_id: str, attempt: int, due: datetime) -> str:
    return json.dumps({"instance_id": instance_id, "attempt": attempt, "due": due.isoformat()},
                      separators=(",", ":"), sort_keys=True)


def parse_body(body: str) -> tuple[str, int] | None:
    """(instance id, attempt) of a retry message; None for one that is not (it is dropped, not retried)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    instance_id, attempt = data.get("instance_id"), data.get("attempt")
    if not isinstance(instance_id, str) or not instance_id or isinstance(attempt, bool) or not isinstance(attempt, int):
        return None
    return instance_id[:255], attempt


class SqsRetryTimer:
    """RetryTimer (chalicelib/service/notifications.py) on the stack's webhook retry queue."""

    time_scale = 1.0

    def __init__(self, client: Any, queue_url: str, now: Callable[[], datetime]):
        self._client = client
        self._queue_url = queue_url
        self._now = now

    def schedule(self, instance_id: str, attempt: int, due: datetime) -> None:
        try:
            self._client.send_message(QueueUrl=self._queue_url, MessageBody=message_body(instance_id, attempt, due),
                                      DelaySeconds=delay_seconds(due, self._now()))
        except Exception as exc:  # botocore errors: the caller falls back on the sweep, or SQS retries the message
            raise Unavailable("the webhook retry could not be queued") from exc
