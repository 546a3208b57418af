"""Continuing live instances whose executions are gone (InstanceService's continuing part, mixed into it).

On AWS an execution outlives every process. The local runtime keeps its store on disk across restarts
but Step Functions (moto) in memory, so after a restart each running or waiting instance names an
execution that no longer exists. Each continues as a new run (kind `continue`) from its last completed
step, as a resume does: the run carries every finished step's output from the event log, a machine step
that was running when the runtime stopped runs again, and a waiting human or webhook step keeps its task
(the registrar's rule for an earlier run's task, chalicelib/runtime/task_registrar.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.core.definition_keys import instance_key
from chalicelib.core.runs import execution_name
from chalicelib.core.times import iso
from chalicelib.errors import Conflict, NotFound
from chalicelib.service.instance_views import settled_launch
from chalicelib.service.launches import launch_intent

CONTINUE = "continue"
LIVE = ("running", "waiting")


class Continuation:
    """Uses InstanceService's _store, _machines, _definitions, _now, _summary, _log, _launch and _give_up."""

    _store: Any
    _tasks: Any
    _machines: Any
    _definitions: Any
    _now: Any
    _summary: Any
    _log: Any
    _launch: Any
    _give_up: Any
    _pinned_arn: Any

    def lost_runs(self) -> list[dict[str, Any]]:
        """Live instances whose recorded execution does not exist (an unfinished launch is not one of
        them: recover_launches finishes it)."""
        lost = []
        for status in LIVE:
            # The index's copy (it projects every attribute) is enough: continue_lost's claim is
            # conditional on the execution and status it shows, so a stale copy is refused there.
            for record in self._store.with_status(status, created_before="~"):
                if settled_launch(record) and self._machines.find(record["execution_arn"]) is None:
                    lost.append(record)
        return lost

    def continue_lost(self, record: dict[str, Any], *,
                      before_start: Callable[[dict[str, Any], Any, str], Any] | None = None) -> str | None:
        """Starts the next run of an instance whose execution is gone, carrying the outputs of every step
        its log shows finished; the new execution's ARN, or None when the instance moved meanwhile.

        The launch goes through the same intent as any start, so a start cut short is finished by the
        sweep. `before_start(run record, summary, execution name)` runs once the run is claimed and before
        its execution starts (the local runtime keeps a waiting timer's due time there). The run executes
        the workflow's current revision, as a resume does.
        """
        runs = record.get("runs") or [{"execution_arn": record["execution_arn"]}]
        summary = self._summary(record, self._log(record))
        intent = launch_intent(iso(self._now()), len(runs), CONTINUE)
        try:
            # Claims the continuation: a second one finds the intent (or the new run) and stops here.
            self._store.update(record["id"], intent, expect={"execution_arn": record["execution_arn"],
                                                             "status": record["status"]})
        except TransitionRefused:
            return None
        claimed = {**record, **intent}
        try:
            definition = self._definitions.get(instance_key(record))
            # A pinned instance continues on its own revision; another, on the current one.
            pinned = self._pinned_arn(record, definition)
            machine_arn = pinned or definition.get("state_machine_arn")
            if not machine_arn:
                raise Conflict(f"definition '{record['definition_name']}' has no state machine")
        except (NotFound, Conflict) as exc:
            # No later attempt can do better: it fails as a start that cannot be made does.
            self._give_up(claimed, f"the workflow could not be continued: {exc.detail}")
            return None
        run = {**claimed, "runs": runs} if pinned else {
            **claimed, "runs": runs, "revision": definition["revision"], "version": definition["version"],
            "revision_number": definition.get("revision_number")}
        if before_start is not None:
            before_start(run, summary, execution_name(record["id"], len(runs)))
        if self._tasks is not None:
            # A completion the log shows decided is carried into the run as its step's output, so the
            # run never waits on that step: its delivery is settled here, not left to expire at the end.
            # (Settled before the launch: a launch cut short is finished from the same log.)
            self._tasks.carried(record["id"], set(summary.outputs))
        arn: str = self._launch(run, machine_arn, steps=dict(summary.outputs), kind=CONTINUE, intent_written=True)
        return arn
