"""What a machine step's states take from the step alone: its retrier, whether it waits for a child, and
whether it can be its own dependency gate."""

from __future__ import annotations

from typing import Any

from chalicelib.core.gates import GATE_OPEN
from chalicelib.core.model import MachineStep

# A workflow.start step with `wait: true` waits on a task token that the child's end answers (its output, or
# its error). The emulator does run states:startExecution.sync:2, but a child started that way would skip
# the instance service (its record, input schema, pins, idempotency, tenant), so the step runner starts it.
CHILD_TASK_TYPE = "workflow.start"
RETRY_DEFAULTS = {"IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0}


def waits_for_child(step: MachineStep) -> bool:
    """A workflow.start step that waits for the child's result (`wait` is a literal true: it decides the
    states the step compiles to, so it is never a placeholder)."""
    return step.task_type == CHILD_TASK_TYPE and step.config.get("wait") is True


def retrier_of(step: MachineStep) -> dict[str, Any] | None:
    """The step's own retry policy as a retrier, or None without one."""
    if not step.retry or step.retry.max_attempts <= 1:
        return None
    retrier: dict[str, Any] = {"ErrorEquals": ["States.ALL"]}
    # A field at its ASL default (IntervalSeconds 1, MaxAttempts 3, BackoffRate 2.0) is left out.
    for field, value in (("IntervalSeconds", step.retry.interval_seconds),
                         ("MaxAttempts", step.retry.max_attempts - 1),
                         ("BackoffRate", step.retry.backoff_rate)):
        if value != RETRY_DEFAULTS[field]:
            retrier[field] = value
    if step.retry.max_delay_seconds:
        retrier["MaxDelaySeconds"] = step.retry.max_delay_seconds
    return retrier


def own_gate(step: MachineStep) -> bool:
    """Whether a gated machine step can be its own gate (runtime/gates.py): not where its state's timeout would
    count the wait, its fallback would miss the outputs the gate gathers, or its state waits for a child."""
    return not (step.timeout_seconds or step.fallback or waits_for_child(step))


def own_gate_retriers(step: MachineStep) -> list[dict[str, Any]]:
    """The retriers a step that is its own gate adds after the service retrier: its States.ALL must not retry
    the gate's opening, so a retrier that matches GATE_OPEN first and never retries goes before it."""
    retrier = retrier_of(step)
    return [{"ErrorEquals": [GATE_OPEN], "MaxAttempts": 0}, retrier] if retrier else []
