"""Starting a child workflow from a step: through InstanceService.start, in the parent's tenant, idempotently;
and, for a step that waits for it, answering the step's task token when the child ends."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from chalicelib.core.runs import run_of_execution
from chalicelib.errors import Conflict, Gone, InvalidInput

log = logging.getLogger("stepflow.instances")

MAX_DEPTH = 8  # children of children: a workflow that starts itself stops here instead of running forever
WORKFLOW_NOT_FOUND = "Workflow.NotFound"
WORKFLOW_NOT_STARTABLE = "Workflow.NotStartable"
WORKFLOW_INVALID_INPUT = "Workflow.InvalidInput"
WORKFLOW_TOO_DEEP = "Workflow.TooDeep"
ERRORS = (WORKFLOW_NOT_FOUND, WORKFLOW_NOT_STARTABLE, WORKFLOW_INVALID_INPUT, WORKFLOW_TOO_DEEP)
# How a waited-on child's end fails the parent's step (catchable by the step's fallback, or retried).
CHILD_FAILED = "Workflow.ChildFailed"
CHILD_CANCELED = "Workflow.ChildCanceled"
CHILD_OUTPUT_TOO_LARGE = "Workflow.ChildOutputTooLarge"
WAIT_ERRORS = (CHILD_FAILED, CHILD_CANCELED, CHILD_OUTPUT_TOO_LARGE)
MAX_ANSWER = 250_000  # SendTaskSuccess takes at most 256 KiB of output
# Step Functions' answers when a token no longer waits (AWS says TaskTimedOut; moto says InvalidToken).
DEAD_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
TERMINAL = frozenset({"completed", "failed", "canceled"})


class ChildWorkflows:
    """``instances`` and ``definitions`` are called lazily: the task registry is built before them."""

    def __init__(self, instances: Callable[[], Any], definitions: Callable[[], Any], instance_store: Callable[[], Any]):
        self._instances = instances
        self._definitions = definitions
        self._store = instance_store

    def start(self, execution: str, step_id: str, workflow: str, input_data: dict[str, Any]) -> dict[str, Any]:
        """The child's instance view; the same one again when the step is retried (the start is keyed on the
        parent's run and step). Raises StepError with one of ERRORS."""
        from chalicelib.service.requests import StartInstance
        from chalicelib.tasks.errors import StepError

        parent_id, run = run_of_execution(execution)
        parent = self._store().get(parent_id) if parent_id else None
        if parent is None:
            raise StepError(WORKFLOW_NOT_STARTABLE, "a child workflow is started from a running instance only")
        tenant = parent.get("tenant_id")
        self._check_depth(parent)
        # The parent's tenant's own definition of the name, in the parent's namespace (names are per
        # tenant and namespace), or a shared one it may see; another tenant's is "not found", as the API says.
        namespace = parent.get("namespace")
        definition = self._definitions().find(workflow, tenant, namespace)
        if definition is None or definition.get("tenant_id") not in (None, tenant):
            raise StepError(WORKFLOW_NOT_FOUND, f"no workflow named '{workflow}'")
        request = StartInstance(definition_name=definition["name"], namespace=definition.get("namespace"),
                                input_data=input_data, tenant_id=tenant, user_id=parent.get("created_by"),
                                origin_instance=parent_id)
        key = "child:" + hashlib.sha256(f"{run}/{step_id}".encode()).hexdigest()
        try:
            view, _ = self._instances().start(request, key, definition=definition)
        except InvalidInput as exc:
            raise StepError(WORKFLOW_INVALID_INPUT, f"the input does not fit '{workflow}': {_summary(exc)}") from None
        except (Conflict, Gone) as exc:
            raise StepError(WORKFLOW_NOT_STARTABLE, f"'{workflow}' cannot start now: {_summary(exc)}") from None
        return dict(view)

    def wait(self, execution: str, step_id: str, token: str, child_id: str) -> None:
        """The parent's step waits for this child: its token goes on the child's record (its end answers
        it, service/endings.py) and the parent is marked as waiting for children (its own end cancels
        those still running). A child that ended already answers now; a parent that ended meanwhile
        cancels the child."""
        parent_id, _ = run_of_execution(execution)
        store = self._store()
        store.update(child_id, {"parent_token": token, "parent_step": step_id})
        if parent_id:
            store.update(parent_id, {"waits_children": True})
        child = store.get(child_id)
        if child is not None and child.get("status") in TERMINAL:
            instances = self._instances()
            answer_parent(instances._machines, {**child, "parent_token": token, "parent_step": step_id},
                          instances._events())
            return
        parent = store.get(parent_id) if parent_id else None
        if parent is not None and parent.get("status") in TERMINAL:
            self._instances().cancel_waited_children(parent)

    def answer(self, token: str, output: dict[str, Any]) -> None:
        """Answers a wait with an output the step had already (a resumed run passes it through)."""
        _send(self._instances()._machines, token, output)

    def _check_depth(self, parent: dict[str, Any]) -> None:
        from chalicelib.tasks.errors import StepError

        seen = {parent.get("id")}
        node = parent
        for _ in range(MAX_DEPTH):
            origin = node.get("origin_instance")
            if not origin or origin in seen:
                return
            seen.add(origin)
            found = self._store().get(origin)
            if found is None:
                return
            node = found
        raise StepError(WORKFLOW_TOO_DEEP, f"child workflows nest at most {MAX_DEPTH} deep")


def _summary(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, dict):
        issues = detail.get("issues") or []
        parts = [f"{i.get('location', '')}: {i.get('message', '')}" for i in issues[:5] if isinstance(i, dict)]
        return "; ".join(parts) or str(detail.get("message", ""))[:300]
    return str(detail)[:300]


def outcome(record: dict[str, Any]) -> tuple[dict[str, Any] | None, str, str]:
    """What an ended child answers its parent's wait: (output, "", "") when it completed, else (None,
    error, message)."""
    name = record.get("definition_name")
    status = record.get("status")
    if status == "completed":
        return {"instance_id": record["id"], "workflow": name, "status": "completed",
                "output": record.get("output") or {}}, "", ""
    if status == "canceled":
        return None, CHILD_CANCELED, f"child workflow '{name}' ({record['id']}) was canceled"
    found = record.get("error")
    error: dict[str, Any] = found if isinstance(found, dict) else {}
    return None, CHILD_FAILED, (f"child workflow '{name}' ({record['id']}) failed: "
                                f"{error.get('error') or 'failed'}: {str(error.get('message') or '')[:500]}")


def answer_parent(machines: Any, record: dict[str, Any], events: Any = None) -> None:
    """SendTaskSuccess/SendTaskFailure on the token of the parent step waiting for this ended child. A token
    that no longer waits (the parent ended, or its step timed out) is done with; any other failure raises
    (the sweep's pass over ended instances answers again). A failure is first written to the parent's
    event log as the step's (`events`: the EventService), as the step runner writes a step's own failure:
    the parent's view reads its steps there (a success is written by the step's next state)."""
    token = record.get("parent_token")
    if not token:
        return
    output, error, message = outcome(record)
    if output is not None:
        _send(machines, token, output, record)
        return
    if events is not None and record.get("origin_instance") and record.get("parent_step"):
        events.record(record["origin_instance"], "step.failed", {"error": error, "message": message},
                      step=record["parent_step"])
    _fail(machines, token, error, message)


def _send(machines: Any, token: str, output: dict[str, Any], record: dict[str, Any] | None = None) -> None:
    if len(json.dumps(output)) > MAX_ANSWER:
        name = (record or {}).get("definition_name", "the child")
        _fail(machines, token, CHILD_OUTPUT_TOO_LARGE,
              f"the output of '{name}' is over {MAX_ANSWER // 1000} KB: read it with GET /instances/{{id}}/result")
        return
    try:
        machines.send_success(token, output)
    except Exception as exc:  # noqa: BLE001 - sorted here: a dead token is done with, anything else raises
        if _code(exc) not in DEAD_TOKEN_ERRORS:
            raise
        log.info("a child's parent no longer waits for it (%s)", _code(exc))


def _fail(machines: Any, token: str, error: str, message: str) -> None:
    try:
        machines.send_failure(token, error, message)
    except Exception as exc:  # noqa: BLE001 - as in _send
        if _code(exc) not in DEAD_TOKEN_ERRORS:
            raise
        log.info("a child's parent no longer waits for it (%s)", _code(exc))


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))
