"""Human-task rules that need no AWS: ids, form checks, the state a completion resumes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.core.instance_data import merge_instance_data

STATUSES = ("pending", "completed", "expired", "canceled")
OPEN = "open"
# The error an escalation `fail` sends when the step names none (on_timeout catches it).
OVERDUE_ERROR = "Stepflow.TaskOverdue"


def decision_field(form_schema: Mapping[str, Any] | None) -> str | None:
    """An approval's decision: the form's boolean `approved` (or `*_approved`) field; None if it has none."""
    properties = (form_schema or {}).get("properties") or {}
    return next((name for name, spec in properties.items()
                 if (name == "approved" or name.endswith("_approved")) and isinstance(spec, Mapping)
                 and spec.get("type") == "boolean"), None)


def task_id_for(execution_arn: str, step_id: str) -> str:
    """One task per step of an execution: a retried or timed-out attempt updates the same record."""
    return hashlib.sha256(f"{execution_arn}/{step_id}".encode()).hexdigest()[:32]


def new_callback_nonce() -> str:
    """The random part of a webhook step's callback key (stored; the key itself is not)."""
    return secrets.token_urlsafe(32)


def callback_key(secret: bytes, nonce: str) -> str:
    """The key in a callback URL: derived from the stored nonce with a server secret, so reading the
    task table does not hand out working callback URLs."""
    mac = hmac.new(secret, nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def callback_digest(key: str) -> str:
    """What the sparse by_callback_key index holds: a hash of the key, looked up by hashing the URL's key."""
    return hashlib.sha256(key.encode()).hexdigest()


def form_issues(schema: Mapping[str, Any] | None, output: Any) -> list[dict[str, str]]:
    """Every field error of a submission against the task's form schema, sorted by field."""
    if not isinstance(output, dict):
        return [{"location": "output_data", "message": "output_data must be an object"}]
    if not schema:
        return []
    from chalicelib.core.schemas import schema_errors  # jsonschema (and re2) load on the first form checked

    issues = []
    for error in schema_errors(dict(schema), output):
        path = list(error.absolute_path)
        if error.validator == "required":
            # Name the missing field itself, not the object that lacks it.
            missing = error.message.split("'")[1] if "'" in error.message else ""
            path = [*path, missing] if missing else path
        location = ".".join(["output_data", *map(str, path)])
        issues.append({"location": location, "message": error.message})
    return sorted(issues, key=lambda i: (i["location"], i["message"]))


def resumed_state(snapshot: Mapping[str, Any], step_id: str, output: Mapping[str, Any],
                  order: Sequence[str]) -> dict[str, Any]:
    """What SendTaskSuccess hands the workflow: the step's output recorded and the data recomputed."""
    steps = dict(snapshot.get("steps") or {})
    steps[step_id] = dict(output)
    return {"steps": steps, "data": merge_instance_data(snapshot.get("input") or {}, steps, order)}


def may_act(record: Mapping[str, Any], principal: str | None, groups: Sequence[str] = (), *,
            admin: bool = False) -> bool:
    """The assignee, a member of the task's groups, or an admin may work a task."""
    if admin or principal is None:
        return True
    if record.get("assignee") == principal:
        return True
    task_groups = {record.get("assignee_group"), *(record.get("candidate_groups") or [])}
    return bool(task_groups & set(groups))


def closing(instance: Mapping[str, Any]) -> tuple[str, str]:
    """How an ended instance's still-open tasks close: (status, reason).

    Canceled (through the API, or its execution stopped) -> `canceled`; failed, timed out, or ended
    any other way -> `expired`: nobody stopped the work on purpose, it just can no longer be done.
    """
    status = instance.get("status")
    if status == "canceled":
        reason = instance.get("cancel_reason")
        return "canceled", f"the instance was canceled ({reason})" if reason and reason != "canceled" \
            else "the instance was canceled"
    if status == "failed":
        error = instance.get("error")
        name = error.get("error") if isinstance(error, Mapping) else None
        return "expired", f"the instance failed ({name})" if name else "the instance failed"
    return "expired", f"the instance {status or 'ended'} without this task"
