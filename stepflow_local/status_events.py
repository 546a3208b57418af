"""Delivers Step Functions execution status changes to the app locally, as EventBridge does on AWS.

moto emits no status-change events. The runtime is told when an execution starts or ends
(stepflow_local/moto_executions.py); the watcher describes only those executions, once per poll, and
hands each change to the app's `@app.on_cw_event` handler for `Step Functions Execution Status Change`.
It never lists executions, so its cost follows the executions that change, not all that ever ran.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from typing import Any

from stepflow_local.runtime import LocalRuntime

DETAIL_TYPE = "Step Functions Execution Status Change"


def status_handlers(app: Any) -> list[tuple[Any, frozenset[str] | None]]:
    """The app's handlers subscribed to execution status changes, each with the statuses its rule's
    pattern asks for (None: every status), as EventBridge would match them."""
    handlers = []
    for source in getattr(app, "event_sources", []):
        pattern = getattr(source, "event_pattern", None) or {}
        if DETAIL_TYPE in (pattern.get("detail-type") or []):
            module_name, attribute = source.handler_string.rsplit(".", 1)
            statuses = (pattern.get("detail") or {}).get("status")
            handlers.append((getattr(importlib.import_module(module_name), attribute),
                             frozenset(statuses) if statuses is not None else None))
    return handlers


def status_event(execution: dict[str, Any], region: str) -> dict[str, Any]:
    return {
        "version": "0", "id": f"local-{execution['name']}-{execution['status']}", "detail-type": DETAIL_TYPE,
        "source": "aws.states", "account": "123456789012", "time": datetime.now(UTC).isoformat(), "region": region,
        "resources": [execution["executionArn"]],
        "detail": {"executionArn": execution["executionArn"], "stateMachineArn": execution["stateMachineArn"],
                   "name": execution["name"], "status": execution["status"]},
    }


class StatusWatcher:
    """Delivers each status change of the runtime's executions once (RUNNING, then the final status)."""

    def __init__(self, runtime: LocalRuntime, handlers: list[tuple[Any, frozenset[str] | None]]):
        self._runtime = runtime
        self._handlers = handlers
        self._seen: dict[str, str] = {}  # running executions whose RUNNING was delivered (ended ones leave)

    def poll(self) -> int:
        changed = self._runtime.execution_changes()
        if not changed:
            return 0
        sfn = self._runtime.client("stepfunctions")
        delivered = 0
        for index, arn in enumerate(changed):
            try:
                execution = sfn.describe_execution(executionArn=arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                self._seen.pop(arn, None)  # gone with a reset of the emulated account
                continue
            status = execution["status"]
            if self._seen.get(arn) == status:
                continue
            event = status_event(execution, self._runtime.region)
            try:
                for handler, statuses in self._handlers:
                    if statuses is None or status in statuses:
                        handler(event, None)
            except Exception:
                # As EventBridge retries a failed target: this change and the ones after it come again.
                for again in changed[index:]:
                    self._runtime.note_execution(again)
                raise
            if status == "RUNNING":
                self._seen[arn] = status
            else:
                self._seen.pop(arn, None)
            delivered += 1
        return delivered


def deliver_status_changes(app: Any, runtime: LocalRuntime, every_seconds: float = 1.0) -> StatusWatcher | None:
    handlers = status_handlers(app)
    if not handlers:
        return None
    watcher = StatusWatcher(runtime, handlers)
    runtime.every(every_seconds, watcher.poll, name="execution-status-changes")
    return watcher
