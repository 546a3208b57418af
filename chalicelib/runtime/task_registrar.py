"""The task-registering Lambda: records a waiting human or webhook step with its task token."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from chalicelib.core.model import HumanStep
from chalicelib.runtime.definitions import RevisionLoader


class TaskRegistrar:
    def __init__(self, loader: RevisionLoader, put: Callable[[dict[str, Any]], None], now: Callable[[], str]):
        self._loader = loader
        self._put = put
        self._now = now

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        loaded = self._loader.load(event["workflow"], event["revision"])
        step = loaded.definition.step(event["step"])
        execution = event.get("execution", "")
        record: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "instance_id": execution.rsplit(":", 1)[-1],
            "execution_arn": execution,
            "workflow": event["workflow"],
            "revision": event["revision"],
            "step_name": step.id,
            "kind": step.type,
            "title": step.label,
            "description": step.description,
            "status": "pending",
            "created_at": self._now(),
            "token": event["token"],
            # What the completion needs to build the step's new state without the execution.
            "snapshot": {"input": event.get("input") or {}, "steps": event.get("steps") or {}},
        }
        if isinstance(step, HumanStep):
            record.update(form_schema=step.form_schema, assignee=step.assignee, assignee_group=step.assignee_group,
                          priority=step.priority)
        self._put(record)
        # The Lambda's own result is ignored by a waitForTaskToken state; the token is not echoed.
        return {"task_id": record["id"]}
