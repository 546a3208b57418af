"""Starts instances and reports them: status, current step, step history and data from Step Functions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator

from chalicelib.core.graph import build_graph
from chalicelib.core.history import STATUS_BY_EXECUTION, summarise
from chalicelib.core.instance_data import merge_instance_data
from chalicelib.core.model import Definition
from chalicelib.core.times import as_iso
from chalicelib.errors import Conflict, InvalidInput, NotFound
from chalicelib.service.requests import StartInstance

TERMINAL = frozenset({"completed", "failed", "canceled"})
MAX_PAGE = 100


def input_issues(schema: dict[str, Any] | None, data: dict[str, Any]) -> list[dict[str, str]]:
    if not schema:
        return []
    validator = Draft202012Validator(schema)
    issues = []
    for error in sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        where = ".".join(str(p) for p in error.absolute_path)
        issues.append({"code": "input_schema", "location": "input_data" + (f".{where}" if where else ""),
                       "message": error.message})
    return issues


class InstanceService:
    def __init__(self, definitions: Any, store: Any, machines: Any, now: Callable[[], str]):
        self._definitions = definitions
        self._store = store
        self._machines = machines
        self._now = now

    def start(self, request: StartInstance) -> dict[str, Any]:
        definition = self._definitions.get(request.definition_name)
        if not definition.get("state_machine_arn"):
            raise Conflict(f"definition '{request.definition_name}' has no state machine yet; register it again")
        issues = input_issues(definition["body"].get("input_schema"), request.input_data)
        if issues:
            raise InvalidInput({"message": "input_data does not match the workflow's input_schema", "issues": issues})
        instance_id = str(uuid.uuid4())
        now = self._now()
        record = {
            "id": instance_id, "definition_name": definition["name"], "version": definition["version"],
            "revision": definition["revision"], "status": "running", "created_at": now, "started_at": now,
            "created_by": request.user_id, "tenant_id": request.tenant_id, "correlation_id": request.correlation_id,
            "input": request.input_data,
        }
        self._store.create(record)
        # The instance id is the execution name: unique, and it ties history events back to us.
        arn = self._machines.start(definition["state_machine_arn"], instance_id,
                                   {"input": request.input_data, "steps": {}, "data": request.input_data})
        self._store.update(instance_id, {"execution_arn": arn})
        return self.get(instance_id)

    def _record(self, instance_id: str) -> dict[str, Any]:
        record = self._store.get(instance_id) if len(instance_id) <= 64 else None
        if record is None:
            raise NotFound(f"no instance '{instance_id}'")
        return record

    def get(self, instance_id: str, *, with_outputs: bool = True) -> dict[str, Any]:
        record = self._record(instance_id)
        arn = record.get("execution_arn")
        if not arn:
            return self._view(record, None, None)
        definition = Definition.model_validate(self._definitions.get_revision(record["definition_name"],
                                                                               record["revision"])["body"])
        execution = self._machines.describe(arn)
        events = self._machines.history(arn)
        kinds = {s.id: s.type for s in definition.steps}
        summary = summarise(events, kinds)
        status = STATUS_BY_EXECUTION.get(execution["status"], "running")
        if status == "running" and any(kinds.get(s) in ("human", "webhook") for s in summary.current_steps):
            status = "waiting"
        order = build_graph(definition).topological_order() or []
        data = merge_instance_data(record.get("input") or {}, summary.outputs, order)
        changes: dict[str, Any] = {}
        if record.get("status") != status:
            changes["status"] = status
        if status in TERMINAL and not record.get("completed_at"):
            changes["completed_at"] = as_iso(execution.get("stopDate")) or self._now()
            changes["output"] = data if status == "completed" else None
            changes["error"] = summary.error
        if changes:
            self._store.update(instance_id, changes)
            record.update(changes)
        return self._view(record, summary, data, with_outputs=with_outputs, total=len(kinds))

    @staticmethod
    def _view(record: dict[str, Any], summary: Any, data: Any, *, with_outputs: bool = True,
              total: int = 0) -> dict[str, Any]:
        steps = list(summary.steps.values()) if summary else []
        done = sum(1 for s in steps if s.status == "succeeded")
        # Steps on branches a gateway did not take never run; once the instance completes they
        # count as skipped, so a completed instance is at 100 %.
        skipped = total - done if record["status"] == "completed" else 0
        percent = 100 if record["status"] == "completed" else (round(100 * done / total) if total else 0)
        return {
            "id": record["id"], "definition_name": record["definition_name"], "version": record.get("version"),
            "revision": record.get("revision"), "status": record["status"],
            "current_step": summary.current_steps[-1] if summary and summary.current_steps else None,
            "current_steps": summary.current_steps if summary else [],
            "started_at": record.get("started_at"), "completed_at": record.get("completed_at"),
            "created_by": record.get("created_by"), "tenant_id": record.get("tenant_id"),
            "correlation_id": record.get("correlation_id"),
            "context_data": data if data is not None else record.get("input"),
            "output": record.get("output"),
            "error": record.get("error") if record.get("error") else (summary.error if summary else None),
            "progress": {"completed_steps": done, "skipped_steps": skipped, "total_steps": total, "percent": percent},
            "step_history": [s.as_dict(with_output=with_outputs) for s in steps],
        }

    def list(self, *, status: str | None = None, workflow_name: str | None = None, limit: int = 20,
             offset: int = 0) -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        skipped = 0
        for record in self._store.newest_first():
            if workflow_name and record["definition_name"] != workflow_name:
                continue
            if record.get("status") not in TERMINAL and record.get("execution_arn"):
                # Until execution events keep the index current, a live record is refreshed on read.
                record = {**record, "status": self.get(record["id"], with_outputs=False)["status"]}
            if status and record.get("status") != status:
                continue
            if skipped < offset:
                skipped += 1
                continue
            items.append(_brief(record))
            if len(items) >= limit:
                break
        return {"items": items, "limit": limit, "offset": offset}


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "definition_name", "version", "status", "started_at", "completed_at", "created_by", "tenant_id",
            "correlation_id")
    return {k: record.get(k) for k in keys}
