"""Starting an instance's execution so that every start converges: the intent is written first, the
execution is named after the instance, and a start that failed or was cut short is finished later.

The steps, each of which may fail or be the last thing a process does:
1. the instance record carries a launch intent (the sparse `chore = "launch"`, with the run and kind);
2. StartExecution under the deterministic name `execution_name(id, run)`;
3. the execution's ARN is recorded and the intent removed, in one conditional write.
After 1 without 3, DescribeExecution by the derived ARN tells whether step 2 happened. A repeat of the
request (same Idempotency-Key) re-attempts at once; the sweep re-attempts intents
older than LAUNCH_GRACE, and after MAX_LAUNCH_ATTEMPTS fails the instance with Stepflow.StartFailed.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.aws.transient import is_transient
from chalicelib.core.definition_keys import instance_key
from chalicelib.core.instance_data import merge_instance_data
from chalicelib.core.runs import execution_name
from chalicelib.core.times import iso
from chalicelib.errors import Conflict, NotFound, Unavailable, UpstreamError
from chalicelib.service.routing import Route

LAUNCH = "launch"
# A start normally takes well under a second: an intent older than this was interrupted.
LAUNCH_GRACE = timedelta(seconds=30)
MAX_LAUNCH_ATTEMPTS = 5
START_FAILED = "Stepflow.StartFailed"
# Removed from the record once the execution is recorded (None removes an attribute).
LAUNCH_DONE = {"chore": None, "chore_at": None, "launch_run": None, "launch_kind": None, "launch_attempts": None}
# The sparse chore of a live instance whose status the sweep checks once chore_at has come, unless a
# status event settles it first (service/instances.py reconcile): set when its launch is recorded.
WATCH = "watch"
WATCH_AFTER = timedelta(minutes=2)
log = logging.getLogger("stepflow.launches")


def launch_intent(now: str, run: int = 0, kind: str = "start") -> dict[str, Any]:
    return {"chore": LAUNCH, "chore_at": now, "launch_run": run, "launch_kind": kind, "launch_attempts": 0}


class Launches:
    """InstanceService's starting half, mixed into it: uses its _store, _machines, _definitions, _now,
    _order, _summary, _log, _end and _publish."""

    _store: Any
    _machines: Any
    _definitions: Any
    _now: Any
    _publish: Any
    _order: Any
    _summary: Any
    _log: Any
    _end: Any
    _aliases: Any
    _routing: Any

    def _launch(self, record: dict[str, Any], machine_arn: str, *, steps: dict[str, Any] | None = None,
                run: int = 0, kind: str = "start", intent_written: bool = False, announced: bool = False,
                routes: list[Any] | None = None) -> str:
        """Starts the instance's execution (writing the intent first unless the caller's write did, and
        instance.started unless it did that too); Unavailable when Step Functions or the store failed:
        the start is then finished later."""
        if not intent_written:
            intent = launch_intent(iso(self._now()), run, kind)
            self._store.update(record["id"], intent)
            record = {**record, **intent}
        if not announced:
            # Logged before the execution starts, so it precedes the first step's events.
            self._publish("instance.started", {"id": record["id"], "workflow": record["definition_name"], "run": kind})
        try:
            return self._start_execution(record, machine_arn, steps or {}, routes)
        except Exception as exc:
            if isinstance(exc, UpstreamError) or is_transient(exc):
                raise Unavailable(_unavailable(record)) from None
            raise

    def _start_execution(self, record: dict[str, Any], machine_arn: str, steps: dict[str, Any],
                         routes: list[Any] | None = None) -> str:
        name = execution_name(record["id"], int(record.get("launch_run") or 0))
        # Without step outputs the order changes nothing (and an alias's revision is not known yet).
        order = self._order(record) if steps else ()
        payload = {"input": record["input"], "steps": steps,
                   "data": merge_instance_data(record["input"] or {}, steps, order)}
        try:
            arn = self._machines.start(machine_arn, name, payload)
        except Conflict:
            # ExecutionAlreadyExists: the name is this instance's, so an earlier attempt of this very
            # launch started it (its answer lost, or its process gone before recording it).
            arn = self._machines.execution_arn(machine_arn, name)
        if record.get("revision") is None:
            record = {**record, **self._chosen(record, self._routing.chosen(arn), routes or [])}
        self._launched(record, arn)
        return arn

    def _pinned_arn(self, record: dict[str, Any], definition: dict[str, Any]) -> str | None:
        """What runs a pinned instance's own revision again (None for an unpinned one): the version it
        started; locally, that revision's state machine, made again if the emulator lost it (a restart)."""
        if not record.get("launch_target"):
            return None
        if self._routing is not None and self._routing.emulated and record.get("revision"):
            route = Route(int(record.get("revision_number") or 0), record["revision"], record.get("version"), None)
            return str(self._routing.target(instance_key(record), definition["state_machine_arn"], [route],
                                            None).arn)
        return str(record["launch_target"])

    def _chosen(self, record: dict[str, Any], version_arn: str | None, routes: list[Any]) -> dict[str, Any]:
        """The revision Step Functions picked for a start through an alias, from the version it started;
        from then on the instance is pinned to that version (a resume runs it again)."""
        route = next((r for r in routes if r.version_arn == version_arn), None) \
            or self._aliases.route_of_version(instance_key(record), version_arn)
        if route is None:
            raise UpstreamError(f"Step Functions started a version no revision of '{record['definition_name']}' "
                                "was published as")
        return {"revision": route.revision, "version": route.version, "revision_number": route.number,
                "launch_target": version_arn}

    def _launched(self, record: dict[str, Any], arn: str) -> None:
        """Records the execution and removes the intent; only the attempt that finds the intent does."""
        now = iso(self._now())
        earlier = record.get("runs") or ([{"execution_arn": record["execution_arn"]}] if record.get("execution_arn") else [])
        runs = [*earlier, {"execution_arn": arn, "kind": record.get("launch_kind") or "start",
                                          "started_at": now}]
        try:
            self._store.update(record["id"], {"execution_arn": arn, "runs": runs, "revision": record["revision"],
                                              "started_at": record.get("started_at") or now,
                                              "version": record.get("version"),
                                              "revision_number": record.get("revision_number"),
                                              "launch_target": record.get("launch_target"), **LAUNCH_DONE,
                                              "chore": WATCH, "chore_at": iso(self._now() + WATCH_AFTER)},
                               expect={"chore": LAUNCH})
        except TransitionRefused:
            current = self._store.get(record["id"]) or {}
            if current.get("execution_arn") != arn and current.get("status") in ("completed", "failed", "canceled"):
                # It ended (was canceled) while this start was under way: the execution must not run on.
                self._machines.stop(arn, "Stepflow.Canceled", "the instance ended before its execution was recorded")

    def _relaunch(self, record: dict[str, Any]) -> str:
        """Finishes an interrupted launch: records the execution if it exists, else starts it."""
        definition = self._definitions.get(instance_key(record))
        # A pinned instance starts what it was pinned to; another, the latest revision.
        machine_arn = self._pinned_arn(record, definition) or definition.get("state_machine_arn")
        if not machine_arn:
            raise Conflict(f"definition '{record['definition_name']}' has no state machine")
        run = int(record.get("launch_run") or 0)
        arn = self._machines.execution_arn(machine_arn, execution_name(record["id"], run))
        found = self._machines.find(arn)
        if found is not None:
            if record.get("revision") is None:
                record = {**record, **self._chosen(record, found.get("stateMachineVersionArn"), [])}
            self._launched(record, arn)
            return "found"
        # A resumed run carries the outputs of the runs before it (the record still points at those).
        steps = dict(self._summary(record, self._log(record), ended="failed").outputs) if run and record.get("execution_arn") else {}
        latest = {} if record.get("launch_target") else {
            "revision": definition["revision"], "version": definition["version"],
            "revision_number": definition.get("revision_number")}
        self._start_execution({**record, **latest}, machine_arn, steps)
        return "started"

    def _stop_unrecorded(self, record: dict[str, Any], reason: str) -> None:
        """Canceling during an unfinished launch: an execution that started but is not recorded is stopped
        (one that starts after this finds the intent gone when it records itself, and stops then)."""
        machine_arn = record.get("launch_target") or self._definitions.get(instance_key(record)).get("state_machine_arn")
        if not machine_arn:
            return
        arn = self._machines.execution_arn(machine_arn, execution_name(record["id"], int(record.get("launch_run") or 0)))
        found = self._machines.find(arn)
        if found is not None and found.get("status") == "RUNNING":
            self._machines.stop(arn, "Stepflow.Canceled", reason)

    def _repeat_launch(self, record: dict[str, Any]) -> None:
        """A repeated start request whose first start never finished makes it now."""
        try:
            self._relaunch(record)
        except Exception as exc:
            if isinstance(exc, UpstreamError) or is_transient(exc):
                raise Unavailable(_unavailable(record)) from None
            raise

    def recover_launches(self, grace: timedelta = LAUNCH_GRACE) -> dict[str, int]:
        """The sweep's pass over launch intents older than `grace`: found, started, or given up."""
        stats = {"found": 0, "started": 0, "start_failed": 0, "retrying": 0}
        for stale in self._store.due_chores(LAUNCH, iso(self._now() - grace)):
            record = self._store.get(stale["id"])  # the index lags; the table has the truth
            if record is None or record.get("chore") != LAUNCH:
                continue
            attempts = int(record.get("launch_attempts") or 0)
            try:
                # Claims this attempt: overlapping sweeps cannot both make it.
                self._store.update(record["id"], {"launch_attempts": attempts + 1, "chore_at": iso(self._now())},
                                   expect={"chore": LAUNCH, "launch_attempts": attempts})
            except TransitionRefused:
                continue
            try:
                stats[self._relaunch(record)] += 1
            except (NotFound, Conflict) as exc:
                # The definition is gone or has no state machine: no later attempt can do better.
                self._give_up(record, f"the workflow could not be started: {exc.detail}")
                stats["start_failed"] += 1
            except Exception:  # noqa: BLE001 - a passing failure, or one that attempts will bound
                log.warning("launch attempt %d of %s failed", attempts + 1, record["id"], exc_info=True)
                if attempts + 1 >= MAX_LAUNCH_ATTEMPTS:
                    self._give_up(record, f"Step Functions did not start the workflow in {attempts + 1} attempts")
                    stats["start_failed"] += 1
                else:
                    stats["retrying"] += 1
        return stats

    def _give_up(self, record: dict[str, Any], message: str) -> None:
        self._end(record, {"status": "failed", "completed_at": iso(self._now()), "output": None,
                           "error": {"error": START_FAILED, "message": message},
                           "context": record.get("context") if record.get("context") is not None else record.get("input")})


def _unavailable(record: dict[str, Any]) -> dict[str, Any]:
    again = ("repeating this request with the same Idempotency-Key retries the start at once"
             if record.get("idempotency_key") else "repeating this request without an Idempotency-Key would create a second instance")
    return {"message": f"Step Functions did not accept the start of instance {record['id']} just now; it is "
                       f"retried automatically within minutes ({again})", "instance_id": record["id"]}
