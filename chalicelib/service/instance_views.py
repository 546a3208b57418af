"""How an instance is shown (InstanceService's reading half, mixed into it): step records folded from its
event log, the execution described or its history read only where the log cannot tell, and the paged
execution history."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.aws.state_machines import InvalidToken
from chalicelib.core.definition_keys import instance_key
from chalicelib.core.history import STATUS_BY_EXECUTION, StepRecord, history_event, summarise
from chalicelib.core.instance_data import merge_instance_data
from chalicelib.core.step_inputs import step_inputs
from chalicelib.core.step_log import SILENT, close_open, fold, may_have_ended
from chalicelib.core.times import as_iso
from chalicelib.errors import InvalidInput, NotFound

TERMINAL = frozenset({"completed", "failed", "canceled"})


class InstanceViews:
    """Uses InstanceService's _store, _machines, _loader, _events, _now, _order, _definition and _settle_end."""

    _store: Any
    _machines: Any
    _loader: Any
    _events: Any
    _now: Any
    _order: Any
    _definition: Any
    _settle_end: Any

    def _history_view(self, record: dict[str, Any]) -> Any:
        """The history summary of every run (carried steps included): read only where the log falls
        short (core/step_log.py) and by the history endpoint's callers."""
        definition = self._definition(record)
        kinds = {s.id: s.type for s in definition.steps}
        runs = record.get("runs") or [{"execution_arn": record["execution_arn"]}]
        # A redrive continues the same execution: read each execution's history once.
        arns = list(dict.fromkeys(run["execution_arn"] for run in runs))
        summaries = [summarise(self._run_history(arn), kinds) for arn in arns]
        summary = summaries[-1]
        # A resumed run skips the steps an earlier run finished: show their earlier records.
        for earlier in reversed(summaries[:-1]):
            for step, step_record in earlier.steps.items():
                if step_record.status == "succeeded" and step not in summary.outputs:
                    summary.outputs[step] = earlier.outputs.get(step)
                current = summary.steps.get(step)
                if current is None or (step_record.status == "succeeded" and current.attempts == 0):
                    summary.steps[step] = step_record
        return summary

    def _run_history(self, execution_arn: str) -> list[dict[str, Any]]:
        """A run's history; empty for an execution that no longer exists (a local runtime that restarted
        lost it: the run that continued the instance, and the event log, tell what it did)."""
        try:
            return self._machines.history(execution_arn)
        except NotFound:
            return []

    def _log(self, record: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The instance's whole event log (one query, paged past 1 MB); None without a log."""
        events = self._events()
        return events.everything(record["id"]) if events is not None and hasattr(events, "everything") else None

    def _summary(self, record: dict[str, Any], log: list[dict[str, Any]] | None, *, ended: str | None = None,
                 error: dict[str, Any] | None = None) -> Any:
        """Step records from the log; from the history only when the log cannot tell."""
        loaded = self._loader.load(instance_key(record), record["revision"])
        if log is not None:
            folded = fold(log, loaded.definition, loaded.order, record.get("input"), ended=ended,
                          error=error if error is not None else record.get("error"))
            if not folded.needs_history:
                return folded.summary
        summary = self._history_view(record)
        if ended:
            close_open(summary, ended)
        return summary

    def _current(self, record: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """The record as it stands and its step records, read from the record and the event log.

        The execution is described only when the record says it runs but the log cannot vouch for it:
        nothing is open (it may have ended with its status event still on the way), a timer waits, or
        an open step is past its timeout. Its history is read only where the log falls short.
        """
        if not settled_launch(record):
            return record, None
        log = self._log(record)
        status = record["status"]
        if status in TERMINAL:
            summary = self._summary(record, log, ended=status)
            kinds = {s.id: s.type for s in self._definition(record).steps}
            if status == "completed" and any(
                    r.status == "succeeded" and r.output is None and kinds.get(r.step_name) not in SILENT
                    for r in summary.steps.values()):
                # An output the log does not hold yet: the succeeded execution's output is authoritative
                # (while the execution exists: a local runtime's restart forgets it, the record keeps the data).
                try:
                    trust_final_output(summary, self._machines.describe(record["execution_arn"]))
                except NotFound:
                    pass
            return record, summary
        summary = self._summary(record, log)
        if may_have_ended(summary, self._definition(record), self._now()):
            try:
                execution = self._machines.describe(record["execution_arn"])
            except NotFound:  # lost with a local runtime's restart, continued at its next start: it runs
                execution = {"status": "RUNNING"}
            ended = STATUS_BY_EXECUTION.get(execution["status"], "running")
            if ended in TERMINAL:
                # Read again: a step that finished between the first read and the describe (the
                # execution ended meanwhile) is in the log now, and the end is recorded with it.
                log = self._log(record)
                record = self._settle_end(record, ended, self._summary(record, log), execution)
                return record, self._summary(record, log, ended=record["status"])
        kinds = {s.id: s.type for s in self._definition(record).steps}
        live = "waiting" if any(kinds.get(s) in ("human", "webhook", "receive") for s in summary.current_steps) else "running"
        if record["status"] != live:
            try:
                self._store.update(record["id"], {"status": live}, expect={"status": record["status"]})
            except TransitionRefused:
                pass
            record = {**record, "status": live}
        data = merge_instance_data(record.get("input") or {}, summary.outputs, self._order(record))
        return {**record, "context": data}, summary

    def _view(self, record: dict[str, Any], summary: Any, *, with_outputs: bool = True,
              input_of: str | None = None) -> dict[str, Any]:
        steps = list(summary.steps.values()) if summary else []
        total = len(self._definition(record).steps) if record.get("revision") else 0
        done = sum(1 for s in steps if s.status == "succeeded")
        # Steps on branches a gateway did not take never run: once the instance completes they count
        # as skipped, so a completed instance is at 100 %.
        skipped = total - done if record["status"] == "completed" else 0
        percent = 100 if record["status"] == "completed" else (round(100 * done / total) if total else 0)
        return {
            **brief(record),
            "revision": record.get("revision"),
            "revision_number": record.get("revision_number"),
            "alias": record.get("alias"),
            "current_step": summary.current_steps[-1] if summary and summary.current_steps else None,
            "current_steps": summary.current_steps if summary else [],
            "context_data": record.get("context") if record.get("context") is not None else record.get("input"),
            "input_data": record.get("input"),
            "output": record.get("output"),
            "error": record.get("error") or (summary.error if summary else None),
            "progress": {"completed_steps": done, "skipped_steps": skipped, "total_steps": total, "percent": percent},
            "step_history": self._step_history(record, summary, steps, with_outputs, input_of),
            "runs": record.get("runs") or [],
            "notifications": record.get("notifications") or [],
            "continued_from": record.get("continued_from"),
            "continued_by": record.get("continued_by"),
        }

    def _step_history(self, record: dict[str, Any], summary: Any, steps: list[StepRecord], with_outputs: bool,
                      input_of: str | None) -> list[dict[str, Any]]:
        shown = [s.as_dict(with_output=with_outputs) for s in steps]
        entry = next((e for e in shown if e["step_name"] == input_of), None)
        if entry is not None and input_of is not None:
            loaded = self._loader.load(instance_key(record), record["revision"])
            inputs = step_inputs(loaded.definition, loaded.order, record.get("input"), summary.outputs, [input_of])
            if input_of in inputs:
                entry["input"] = inputs[input_of]
        return shown

    def history(self, record: dict[str, Any], run: int, position: Any, limit: int) -> dict[str, Any]:
        """One page of a run's execution history (Step Functions' own events, task tokens left out).
        `position`/`next_cursor` are raw ({token, skip}: Step Functions' page token and how much of that
        page was handed out already, for an emulator that ignores maxResults); the API seals them."""
        runs = record.get("runs") or ([{"execution_arn": record["execution_arn"]}] if record.get("execution_arn") else [])
        if not runs:
            return {"instance_id": record["id"], "run": run, "events": [], "next_cursor": None}
        position = position if isinstance(position, dict) else {}
        token, skip = position.get("token"), int(position.get("skip") or 0)
        try:
            events, following = self._machines.history_page(runs[run]["execution_arn"], token, limit)
        except InvalidToken:
            raise InvalidInput({"message": "cursor is not valid for this history", "issues": []}) from None
        except NotFound:
            events, following = [], None  # not started yet, or gone with Step Functions' retention
        shown = events[skip:skip + limit]
        if skip + limit < len(events):
            cursor: dict[str, Any] | None = {"token": token, "skip": skip + limit}
        else:
            cursor = {"token": following, "skip": 0} if following else None
        return {"instance_id": record["id"], "run": run, "execution_arn": runs[run]["execution_arn"],
                "events": [history_event(e) for e in shown], "next_cursor": cursor}


def settled_launch(record: dict[str, Any]) -> bool:
    """Whether the record's execution is its current one: not while a launch (a start or a resume) is
    unfinished, when execution_arn is missing or still names the run before it."""
    return bool(record.get("execution_arn")) and record.get("chore") != "launch"


def trust_final_output(summary: Any, execution: dict[str, Any]) -> None:
    """A succeeded execution's output is its final steps map: authoritative where the history may
    still trail the status (it does in moto), so no finished step is missing from the data."""
    try:
        final = json.loads(execution.get("output") or "{}")
    except ValueError:
        return
    if not isinstance(final, dict):
        return
    for step, output in final.items():
        summary.outputs[step] = output
        record = summary.steps.get(step)
        if record is None:
            summary.steps[step] = StepRecord(step, "succeeded", completed_at=as_iso(execution.get("stopDate")),
                                             output=output, attempts=1)
        elif record.status != "succeeded":
            record.status, record.output = "succeeded", output
            record.completed_at = record.completed_at or as_iso(execution.get("stopDate"))
    summary.current_steps = []


# An instance as a listing shows it (and the head of its detail view): a listing reads only these.
BRIEF_FIELDS = ("id", "definition_name", "namespace", "version", "status", "created_at", "started_at", "completed_at",
                "created_by", "tenant_id", "correlation_id", "webhook_url", "origin_instance", "origin_zone", "origin_tenant_id",
                "origin_reference", "retry_of", "retried_by", "deleted_at", "cancel_reason")


def brief(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in BRIEF_FIELDS}
