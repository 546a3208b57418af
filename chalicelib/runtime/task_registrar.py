"""The task-registering Lambda: records a waiting human or webhook step with its task token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core.instance_data import merge_instance_data
from chalicelib.core.model import HumanStep
from chalicelib.core.tasks import task_id_for
from chalicelib.core.times import iso
from chalicelib.runtime.definitions import RevisionLoader
from chalicelib.tasks import templating
from chalicelib.tasks.errors import StepError


class TaskRegistrar:
    def __init__(self, loader: RevisionLoader, store: Any, now: Callable[[], datetime]):
        self._loader = loader
        self._store = store
        self._now = now

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        loaded = self._loader.load(event["workflow"], event["revision"])
        step = loaded.definition.step(event["step"])
        execution = event.get("execution", "")
        start_input = event.get("input") or {}
        steps = event.get("steps") or {}
        data = merge_instance_data(start_input, steps, loaded.order)
        task_id = task_id_for(execution, step.id)
        previous = self._store.get(task_id)
        now = self._now()
        record: dict[str, Any] = {
            "id": task_id,
            "instance_id": execution.rsplit(":", 1)[-1],
            "execution_arn": execution,
            "workflow": event["workflow"],
            "revision": event["revision"],
            "step_name": step.id,
            "kind": step.type,
            "title": _text(step.label, data),
            "description": _text(step.description, data),
            "status": "pending",
            "created_at": iso(now),
            # A timed-out or retried attempt gets a new token; the record follows the current attempt.
            "attempt": (previous or {}).get("attempt", 0) + 1,
            "token": event["token"],
            # What a completion needs to resume the workflow without reading the execution.
            "snapshot": {"input": start_input, "steps": steps},
        }
        if isinstance(step, HumanStep):
            due = now + timedelta(seconds=step.due_in) if step.due_in else None
            record.update(
                form_schema=step.form_schema,
                assignee=_text(step.assignee, data),
                assignee_group=_text(step.assignee_group, data),
                candidate_groups=[g for g in (_text(g, data) for g in step.candidate_groups) if g],
                priority=step.priority,
                due_at=iso(due) if due else None,
                reminder_at=iso(due - timedelta(seconds=step.reminder_before)) if due and step.reminder_before else None,
                escalation=step.escalation.model_dump() if step.escalation else None,
            )
        self._store.put(record)
        # A waitForTaskToken state ignores the function's result; the token is not echoed.
        return {"task_id": task_id}


def _text(template: str | None, data: dict[str, Any]) -> str | None:
    """A literal, or a {{ path }} template filled from instance data; an empty result is None."""
    if template is None:
        return None
    try:
        value = templating.render(template, data)
    except StepError:
        return None  # the path is not in the data: the field stays unset rather than failing the step
    return str(value) if value not in (None, "") else None


def utc_now() -> datetime:
    return datetime.now(UTC)
