"""Lifecycle events for other systems, published to EventBridge from the event log's stream: the log is
the outbox.

A request writes instance.started, instance.ended or task.completed into the instance's event log in
the same write (or transaction) as the change it records, and never calls EventBridge itself. The log
table's DynamoDB stream hands every new event to `app.lifecycle_events`, which publishes those below.
A publish that fails fails the batch, and the stream hands it over again: every lifecycle event the
log holds is published at least once (a retried batch may repeat some), and nothing is published that
was not written. task.overdue, task.reminder and task.reassigned are published directly where they
happen (the sweep, a reassignment): they are not in the log, and not on a request path with a budget.
"""

from __future__ import annotations

from typing import Any

from chalicelib.aws.task_store import public

# Log events published as they are written (docs/api.md, "Lifecycle events on EventBridge").
PUBLISHED = frozenset({"instance.started", "instance.ended", "task.completed"})


class LifecyclePublisher:
    def __init__(self, publisher: Any, tasks: Any):
        self._publisher = publisher  # EventPublisher
        self._tasks = tasks  # TaskStore (read only: get)

    def publish_changes(self, changes: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]) -> int:
        """Publishes what the log changes call for, in their order; how many events were published."""
        events: list[tuple[str, dict[str, Any]]] = []
        for change, new, old in changes:
            if new is None:
                continue  # removed with its instance
            kind = new["type"]
            if change == "INSERT" and kind in PUBLISHED:
                detail = new["data"] if kind.startswith("instance.") else self._task(new, "completed")
            elif change == "MODIFY" and kind == "task.expired" and old is not None and old["type"] == "task.completed":
                # A logged completion that never reached its workflow: whoever got its task.completed
                # learns that it did not stand.
                detail = self._task(new, "expired")
            else:
                continue
            if detail is not None:
                events.append((kind, detail))
        return self._publisher.publish_all(events) if events else 0

    def _task(self, event: dict[str, Any], status: str) -> dict[str, Any] | None:
        """{"task": the task as clients see it}, if it still has `status` (a completion found expired
        already is not announced: its task.expired follows)."""
        record = self._tasks.get(str(event["data"].get("task_id") or ""))
        if record is None or record.get("status") != status:
            return None
        return {"task": public(record)}
