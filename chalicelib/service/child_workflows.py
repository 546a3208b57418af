"""Starting a child workflow from a step: through InstanceService.start, in the parent's tenant, idempotently."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from chalicelib.core.runs import run_of_execution
from chalicelib.errors import Conflict, Gone, InvalidInput

MAX_DEPTH = 8  # children of children: a workflow that starts itself stops here instead of running forever
WORKFLOW_NOT_FOUND = "Workflow.NotFound"
WORKFLOW_NOT_STARTABLE = "Workflow.NotStartable"
WORKFLOW_INVALID_INPUT = "Workflow.InvalidInput"
WORKFLOW_TOO_DEEP = "Workflow.TooDeep"
ERRORS = (WORKFLOW_NOT_FOUND, WORKFLOW_NOT_STARTABLE, WORKFLOW_INVALID_INPUT, WORKFLOW_TOO_DEEP)


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
