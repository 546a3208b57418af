"""Dependency gates on the step runner's side: a gated step registers its task token, each step it waits for
arrives when it finishes, and whichever write completes the gate (aws/gate_store.py tells which, exactly
one) releases it, with the outputs the gated step needs.

A gated machine step is its own gate (core/gates.py): its state reads the gate and, when it is complete
already, runs the step in the same invocation, writing nothing; else it registers its token, the arrival
that completes the gate fails the token with GATE_OPEN, and the state's Catch enters `<step>__run`, which
runs the step with the outputs the failure's cause carries. Any other gated step waits at a gate state that the release answers with its
outputs (SendTaskSuccess)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.core.gates import GATE_OPEN
from chalicelib.core.instance_data import merge_instance_data
from chalicelib.core.runs import run_of_execution

log = logging.getLogger("stepflow.steps")
# SendTaskSuccess answers these once the execution has ended (stopped, failed): nothing waits any more.
GONE = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist", "ExecutionDoesNotExist"})
# Step Functions takes a failure's cause up to 32,768 characters: outputs beyond that are read from the gate.
CAUSE_LIMIT = 32768
FROM_GATE = ""  # the cause of a release whose outputs stay in the gate item


class Gates:
    def __init__(self, store: Any, send_success: Callable[[str, dict[str, Any]], None],
                 send_failure: Callable[[str, str, str], None] | None = None):
        self._store = store
        self._send_success = send_success
        self._send_failure = send_failure

    def wait(self, event: dict[str, Any], order: Sequence[str]) -> None:
        """The gate state of event["step"]: registers its token; released at once if nothing is missing."""
        instance_id, run = run_of_execution(event.get("execution", ""))
        gate = self._register(event, instance_id, run, runs_step=False)
        if gate is not None:
            self._release(instance_id, run, event["step"], gate, event.get("input") or {}, order, mark=False)

    def open(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """A gated machine step's own state: the steps map to run it with when its gate is complete now (read,
        not written), else None once its token is registered (the arrival that completes the gate fails the
        token with GATE_OPEN)."""
        instance_id, run = run_of_execution(event.get("execution", ""))
        gate = self._register(event, instance_id, run, runs_step=True)
        return None if gate is None else {**gate["outputs"], **dict(event.get("steps") or {})}

    def opened(self, event: dict[str, Any]) -> dict[str, Any]:
        """The steps map of `<step>__run`, entered by the GATE_OPEN failure whose cause is event["outcome"]."""
        steps = dict(event.get("steps") or {})
        cause = event.get("outcome")
        if isinstance(cause, str) and cause != FROM_GATE:
            outputs = json.loads(cause)
        else:
            instance_id, run = run_of_execution(event.get("execution", ""))
            outputs = self._store.outputs(instance_id, run, event["step"])
        return {**outputs, **steps}

    def _register(self, event: dict[str, Any], instance_id: str, run: str, *, runs_step: bool) -> dict[str, Any] | None:
        steps = dict(event.get("steps") or {})
        waits = list(event.get("waits") or [])
        # Steps already in this branch's map finished before (a resumed run carries them): arrived.
        present = [w for w in waits if w in steps]
        return self._store.register(instance_id, run, event["step"], event["token"], waits, present, steps,
                                    runs_step=runs_step)

    def arrive(self, event: dict[str, Any], steps: dict[str, Any], order: Sequence[str]) -> None:
        """event["step"] has finished with `steps`: each gated step it releases hears of it."""
        instance_id, run = run_of_execution(event.get("execution", ""))
        for child in event.get("releases") or ():
            gate = self._store.arrive(instance_id, run, child, event["step"], steps)
            if gate is not None:
                self._release(instance_id, run, child, gate, event.get("input") or {}, order, mark=True)

    def _release(self, instance_id: str, run: str, step: str, gate: dict[str, Any], start_input: dict[str, Any],
                 order: Sequence[str], *, mark: bool) -> None:
        token, steps = gate["token"], gate["outputs"]
        try:
            if gate["runs_step"]:
                cause = json.dumps(steps, separators=(",", ":"))
                self._fail(token, GATE_OPEN, cause if len(cause) <= CAUSE_LIMIT else FROM_GATE)
            else:
                self._send_success(token, {"steps": steps, "data": merge_instance_data(start_input, steps, order)})
        except Exception as exc:
            if _code(exc) in GONE:
                log.info("gate of %s not released: its run has ended", step)
                return
            if mark:  # a retry of this Lambda arrives again and sends it (a registration retries itself)
                self._store.mark_unsent(instance_id, run, step, token)
            raise

    def _fail(self, token: str, error: str, cause: str) -> None:
        if self._send_failure is None:
            raise RuntimeError("this step runner cannot open gates of machine steps")
        self._send_failure(token, error, cause)

    def answer(self, token: str, output: dict[str, Any]) -> None:
        """The output of a gated machine step that ran in its own state's invocation."""
        try:
            self._send_success(token, output)
        except Exception as exc:
            if _code(exc) in GONE:
                log.info("a gated step's answer was not delivered: its run has ended")
                return
            raise


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
