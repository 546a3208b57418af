"""Dependency gates on the step runner's side: a gated step's gate state registers its task token, each
step it waits for arrives when it finishes, and whichever of them completes the pair sends the token
its success, exactly once (aws/gate_store.py claims it), with the outputs the gated step needs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.core.instance_data import merge_instance_data
from chalicelib.core.runs import run_of_execution

log = logging.getLogger("stepflow.steps")
# SendTaskSuccess answers these once the execution has ended (stopped, failed): nothing waits any more.
GONE = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist", "ExecutionDoesNotExist"})


class Gates:
    def __init__(self, store: Any, send_success: Callable[[str, dict[str, Any]], None]):
        self._store = store
        self._send_success = send_success

    def wait(self, event: dict[str, Any], order: Sequence[str]) -> None:
        """The gate state of event["step"]: registers its token; released at once if nothing is missing."""
        instance_id, run = run_of_execution(event.get("execution", ""))
        steps = dict(event.get("steps") or {})
        waits = list(event.get("waits") or [])
        # Steps already in this branch's map finished before (a resumed run carries them): arrived.
        present = [w for w in waits if w in steps]
        gate = self._store.register(instance_id, run, event["step"], event["token"], waits, present, steps)
        if complete(gate):
            self._release(instance_id, run, event["step"], gate, event.get("input") or {}, order)

    def arrive(self, event: dict[str, Any], steps: dict[str, Any], order: Sequence[str]) -> None:
        """event["step"] has finished with `steps`: each gated step it releases hears of it."""
        instance_id, run = run_of_execution(event.get("execution", ""))
        for child in event.get("releases") or ():
            gate = self._store.arrive(instance_id, run, child, event["step"], steps)
            if complete(gate):
                self._release(instance_id, run, child, gate, event.get("input") or {}, order)

    def _release(self, instance_id: str, run: str, step: str, gate: dict[str, Any], start_input: dict[str, Any],
                 order: Sequence[str]) -> None:
        token = gate["token"]
        claimed = self._store.claim(instance_id, run, step, token)
        if claimed is None:
            return  # the other side of the pair released it
        steps = claimed["outputs"]
        try:
            self._send_success(token, {"steps": steps, "data": merge_instance_data(start_input, steps, order)})
        except Exception as exc:
            if _code(exc) in GONE:
                log.info("gate of %s not released: its run has ended", step)
                return
            # Given back, so that a retry of this Lambda (or of the gate state) can release it.
            self._store.unclaim(instance_id, run, step, token)
            raise


def complete(gate: dict[str, Any]) -> bool:
    """Whether the gated step has registered and everything it waits for has arrived."""
    return gate["token"] is not None and set(gate["waits"]) <= set(gate["arrived"])


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
