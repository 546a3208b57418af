"""Instance lifecycle: start (idempotent, or created to start later), report, list, cancel, retry,
resume, continue a run whose execution was lost, clean up, and keep the instance index in step with
Step Functions."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.aws.state_machines import RedriveUnavailable
from chalicelib.core import definition_keys
from chalicelib.core.definition_keys import instance_key
from chalicelib.core.failures import public_error
from chalicelib.core.instance_data import merge_instance_data
from chalicelib.core.listing import instance_index
from chalicelib.core.model import Definition
from chalicelib.core.schemas import schema_errors
from chalicelib.core.times import as_iso, iso
from chalicelib.errors import Conflict, InvalidInput, NotFound
from chalicelib.service.child_workflows import answer_parent
from chalicelib.service.continuation import Continuation
from chalicelib.service.endings import CLOSE, Endings
from chalicelib.service.instance_views import BRIEF_FIELDS, InstanceViews, brief, settled_launch, trust_final_output
from chalicelib.service.launches import LAUNCH_DONE, Launches, launch_intent
from chalicelib.service.reconciliation import Reconciliation
from chalicelib.service.requests import StartInstance
from chalicelib.service.run_continuation import RunContinuation

TERMINAL = frozenset({"completed", "failed", "canceled"})
LIVE = frozenset({"running", "waiting"})
MAX_PAGE = 100
MAX_HISTORY_PAGE = 200
SYNC_WAIT_CAP = 25.0  # inside API Gateway's 29 s integration timeout
ID_NAMESPACE = uuid.UUID("5d0c7b54-6a55-4a5e-9a2e-3f1f4c3c9b71")
log = logging.getLogger("stepflow.instances")


def input_issues(schema: dict[str, Any] | None, data: dict[str, Any]) -> list[dict[str, str]]:
    if not schema:
        return []
    issues = []
    for error in sorted(schema_errors(schema, data), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        where = ".".join(str(p) for p in error.absolute_path)
        issues.append({"code": "input_schema", "location": "input_data" + (f".{where}" if where else ""),
                       "message": error.message})
    return issues


def refuse_inactive(definition: dict[str, Any]) -> None:
    """A deactivated definition starts nothing new (instances already running finish on their revision)."""
    if definition.get("active") is False:
        raise Conflict(f"definition '{definition['name']}' is deactivated: no new instance can start "
                       "(instances already running finish on their revision); register it again to reactivate it")


class InstanceService(InstanceViews, Reconciliation, Launches, Endings, Continuation, RunContinuation):
    def __init__(self, definitions: Any, store: Any, machines: Any, loader: Any, now: Callable[[], datetime], *,
                 tasks: Any = None, notifier: Any = None, events: Callable[[], Any] | None = None,
                 sleep: Callable[[float], None] = time.sleep, aliases: Any = None, routing: Any = None,
                 gates: Any = None):
        self._definitions = definitions
        self._gates = gates  # aws/gate_store.py: the dependency gates an ended instance leaves
        self._aliases = aliases  # service/aliases.py: the routes of a pinned start
        self._routing = routing  # service/routing.py: where a pinned start goes (AWS or the local runtime)
        self._store = store
        self._machines = machines
        self._loader = loader  # cached, immutable revisions
        self._now = now
        self._tasks = tasks
        self._notifier = notifier
        self._events = events or (lambda: None)
        self._sleep = sleep

    # -- starting ------------------------------------------------------------------------------
    def start(self, request: StartInstance, idempotency_key: str | None = None, *,
              definition: dict[str, Any] | None = None, check_input: bool = True) -> tuple[dict[str, Any], bool]:
        """The instance and whether it was created now (False: an idempotent repeat). `definition`: the
        latest definition as this request already read it; `check_input` False skips the input_schema
        (a continuation starts from a run's data, not from what a starter supplies)."""
        if definition is None or definition.get("name") != request.definition_name:
            definition = self._definitions.find(request.definition_name, request.tenant_id, request.namespace)
            if definition is None:
                raise NotFound(f"no definition named '{request.definition_name}'")
        if not definition.get("state_machine_arn"):
            raise Conflict(f"definition '{request.definition_name}' has no state machine yet; register it again")
        refuse_inactive(definition)
        issues = input_issues(definition["body"].get("input_schema"), request.input_data) if check_input else []
        if issues:
            raise InvalidInput({"message": "input_data does not match the workflow's input_schema", "issues": issues})
        # Only the Idempotency-Key deduplicates: a correlation_id is a tag that many related instances share.
        key = idempotency_key
        # Unpinned requests hash as they did before pins existed (a repeat across an upgrade still matches).
        unset = {f for f in ("revision", "alias") if getattr(request, f) is None}
        fingerprint = hashlib.sha256(json.dumps(request.model_dump(exclude={"start", *unset}), sort_keys=True,
                                                default=str).encode()).hexdigest()
        pin, routes = self._pin(request, definition)
        if key:
            # The key names the instance (and so the execution): a repeat finds the same one.
            named = definition_keys.key(None, request.namespace, request.definition_name)
            instance_id = str(uuid.uuid5(ID_NAMESPACE, f"{request.tenant_id or ''}/{named}/{key}"))
        else:
            instance_id = str(uuid.uuid4())
        now = iso(self._now())
        # A started instance is written with its launch intent: the start converges from here.
        intent = launch_intent(now) if request.start else {}
        record = {
            "id": instance_id, "definition_name": definition["name"], "namespace": definition.get("namespace"),
            "definition_key": definition.get("key") or definition["name"], "version": definition["version"],
            "revision": definition["revision"], "revision_number": definition.get("revision_number"),
            **pin, "status": "running" if request.start else "pending",
            "created_at": now, "created_by": request.user_id, "tenant_id": request.tenant_id,
            "correlation_id": request.correlation_id, "idempotency_key": idempotency_key,
            "request_hash": fingerprint, "input": request.input_data, "webhook_url": request.webhook_url,
            **request.origin(), **intent,
        }
        # A started instance's instance.started is written with it, in one transaction: the log (and the
        # lifecycle events published from it) has it exactly when the instance exists.
        events = self._events() if request.start else None
        announce = {"id": instance_id, "workflow": definition["name"], "run": "start"}
        also = (events.record_request(instance_id, "instance.started", announce),) if events is not None else ()
        try:
            self._store.create(record, also=also)
        except Conflict:
            existing = self._store.get(instance_id) or {}
            if existing.get("request_hash") != fingerprint:
                raise Conflict(f"a different request already used this idempotency key (instance {instance_id})") from None
            if existing.get("chore") == "launch" and existing.get("status") in LIVE:
                self._repeat_launch(existing)  # its first start failed or was cut short
            return self.get(instance_id), False
        if not request.start:
            return self._view(record, None), True
        arn = self._launch(record, record.get("launch_target") or definition["state_machine_arn"], intent_written=True,
                           announced=bool(also), routes=routes)
        # Just started: no step has run yet, so the view is the record as written (nothing to read back).
        return self._view({**record, **LAUNCH_DONE, "execution_arn": arn, "started_at": now,
                           "runs": [{"execution_arn": arn, "kind": "start", "started_at": now}]}, None), True

    def _pin(self, request: StartInstance, definition: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        """For a start pinned to a revision or an alias: the record's fields (the revision it runs, when
        known now; the alias; the ARN to start) and the routes; ({}, []) for an unpinned start, which runs
        the latest revision on the state machine itself."""
        if request.revision is None and request.alias is None:
            return {}, []
        if self._aliases is None or self._routing is None:
            raise Conflict("this service starts the latest revision only")
        name = definition.get("key") or definition["name"]  # the key: the aliases and revisions of this scope
        if request.alias is not None:
            routes = self._aliases.routes(name, request.alias, definition)
        else:
            routes = [self._aliases.revision_route(name, str(request.revision)[:64], definition)]
        target = self._routing.target(name, definition["state_machine_arn"], routes, request.alias)
        chosen = target.route
        # Step Functions picks an alias's route when the execution starts: the revision is learned then.
        return {"revision": chosen.revision if chosen else None, "version": chosen.version if chosen else None,
                "revision_number": chosen.number if chosen else None, "alias": request.alias,
                "launch_target": target.arn}, routes

    def start_pending(self, instance_id: str) -> dict[str, Any]:
        record = self._record(instance_id)
        if record["status"] != "pending":
            raise Conflict(f"instance is {record['status']}; only a pending instance can be started")
        definition = self._definitions.get(instance_key(record))
        refuse_inactive(definition)
        intent = launch_intent(iso(self._now()))
        try:
            self._store.update(instance_id, {"status": "running", **intent}, expect={"status": "pending"},
                               record=record)
        except TransitionRefused:
            raise Conflict("the instance was started meanwhile") from None
        pinned = self._pinned_arn(record, definition)
        if pinned:  # pinned when it was created: it runs what it was pinned to
            self._launch({**record, **intent}, pinned, intent_written=True)
        else:
            self._launch({**record, **intent, "revision": definition["revision"], "version": definition["version"],
                          "revision_number": definition.get("revision_number")},
                         definition["state_machine_arn"], intent_written=True)
        return self.get(instance_id)

    def run(self, request: StartInstance, wait_seconds: float, idempotency_key: str | None = None) -> tuple[int, dict[str, Any]]:
        """Starts and waits up to `wait_seconds` (capped at 25 s) for the result; 202 if still running."""
        view, _ = self.start(request, idempotency_key)
        deadline = time.monotonic() + min(max(wait_seconds, 0.0), SYNC_WAIT_CAP)
        while True:
            code, body = self.result(view["id"])
            if code == 200 or time.monotonic() >= deadline:
                return code, body
            self._sleep(0.2)  # describe calls are cheap, but not free: ~5 a second

    def result(self, instance_id: str) -> tuple[int, dict[str, Any]]:
        """202 while the instance runs; 200 with the result, or the error, once it has ended. Both name
        the workflow and revision it runs and when it started (the API adds where to ask again)."""
        record = self._refresh(self._record(instance_id))
        body = {"id": instance_id, "status": record["status"], "workflow_name": record.get("definition_name"),
                "revision": record.get("revision"), "started_at": record.get("started_at") or record.get("created_at")}
        if record["status"] not in TERMINAL:
            return 202, body
        return 200, {**body, "result": record.get("output"), "error": record.get("error"),
                     "completed_at": record.get("completed_at")}

    # -- reading -------------------------------------------------------------------------------
    def _record(self, instance_id: str) -> dict[str, Any]:
        record = self._store.get(instance_id)
        if record is None:
            raise NotFound(f"no instance '{instance_id}'")
        return record

    def _order(self, record: dict[str, Any]) -> tuple[str, ...]:
        return self._loader.load(instance_key(record), record["revision"]).order

    def _definition(self, record: dict[str, Any]) -> Definition:
        return self._loader.load(instance_key(record), record["revision"]).definition

    def get(self, instance_id: str, *, with_outputs: bool = True, input_of: str | None = None,
            record: dict[str, Any] | None = None) -> dict[str, Any]:
        """The instance's view (with `input_of`, that step's input on its record); `record` is the one the
        caller (the route's guard) already read."""
        record, summary = self._current(record if record is not None else self._record(instance_id))
        return self._view(record, summary, with_outputs=with_outputs, input_of=input_of)

    def _refresh(self, record: dict[str, Any]) -> dict[str, Any]:
        return self._current(record)[0]

    def _settle_end(self, record: dict[str, Any], status: str, summary: Any,
                    execution: dict[str, Any]) -> dict[str, Any]:
        """Records the end Step Functions reports; the first to record it also closes and notifies."""
        if record.get("execution_arn") != execution.get("executionArn", record.get("execution_arn")):
            return record  # an event about an earlier run
        if record["status"] in TERMINAL and record.get("completed_at"):
            return record
        if status == "completed":
            trust_final_output(summary, execution)
        data = merge_instance_data(record.get("input") or {}, summary.outputs, self._order(record))
        changes = {"status": status, "completed_at": as_iso(execution.get("stopDate")) or iso(self._now()),
                   "output": data if status == "completed" else None,
                   "error": (_execution_error(execution) or summary.error) if status == "failed" else None,
                   "context": data}
        return self._end(record, changes)

    def _end(self, record: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """Moves the instance to its end once; only that one writer closes its tasks and notifies.

        The end write also leaves the `close` chore (and drops a launch intent): if closing is cut short,
        the sweep finishes it (finish_endings), so no task of an ended instance stays open.
        """
        changes = {**changes, **LAUNCH_DONE, "chore": CLOSE, "chore_at": iso(self._now())}
        try:
            self._store.update(record["id"], changes, expect_not={"status": sorted(TERMINAL)}, record=record)
        except TransitionRefused:
            return self._store.get(record["id"]) or record
        ended = {**record, **changes}
        try:
            self._close(ended)
        except Exception:  # noqa: BLE001 - the end stands; the sweep closes what is left
            log.warning("closing instance %s was cut short; the sweep finishes it", record["id"], exc_info=True)
        fresh = self._store.get(record["id"])
        if fresh is not None and fresh.get("waits_children") and not ended.get("waits_children"):
            # A step began waiting for a child while this end was written (service/child_workflows.py wait
            # marks the parent, then reads its status; this end wrote the status, then reads the mark): one
            # of the two sees the other, so the child is canceled either there or here.
            self.cancel_waited_children(fresh)
        if fresh is not None and fresh.get("parent_token") and not ended.get("parent_token"):
            # The same crossing for a parent's step that began waiting for this child: its wait wrote the
            # token, then read this child still running; this end wrote the status, then reads the token.
            answer_parent(self._machines, fresh, self._events())
        return fresh or ended

    def list(self, *, filters: dict[str, str | None], tenant: str | None, started_after: str | None = None,
             started_before: str | None = None, include_deleted: bool = False, limit: int = 20,
             start: dict[str, Any] | None = None, offset: int = 0) -> dict[str, Any]:
        """Newest first, one index query (core/listing.py; Unindexed for filters no index serves).

        Pages follow `next_cursor`; a deprecated `offset` (at most a page) skips items it still reads.
        `start`/`next_cursor` are raw index keys: the API seals them for clients (core/cursors.py).
        """
        family, value = instance_index(filters, tenant=tenant, include_deleted=include_deleted)
        # Only what the listing shows is read: not the input, output, context or runs an item carries.
        items, following = self._store.page(family, value, started_after=started_after, started_before=started_before,
                                             limit=limit + offset, start=start, attributes=BRIEF_FIELDS)
        return {"items": [brief(r) for r in items[offset:]], "limit": limit, "offset": offset,
                "next_cursor": following or None}

    # -- control -------------------------------------------------------------------------------
    def cancel_and_purge(self, instance_id: str, reason: str | None) -> dict[str, Any]:
        """Cancels (when it has not ended yet) and removes the instance with its tasks and events; the
        instance as it was last seen, marked `purged`."""
        record = self._refresh(self._record(instance_id))
        view = self.cancel(instance_id, reason) if record["status"] not in TERMINAL else self.get(instance_id)
        self.delete(instance_id, purge=True)
        return {**view, "purged": True}

    def cancel(self, instance_id: str, reason: str | None) -> dict[str, Any]:
        record = self._refresh(self._record(instance_id))
        if record["status"] in TERMINAL:
            raise Conflict(f"instance already {record['status']}")
        if settled_launch(record):
            self._machines.stop(record["execution_arn"], "Stepflow.Canceled", reason or "canceled through the API")
        elif record.get("chore") == "launch":
            self._stop_unrecorded(record, reason or "canceled through the API")
        # Recorded now: Step Functions' own status change arrives later and then finds it settled.
        self._end(record, {"status": "canceled", "completed_at": iso(self._now()),
                           "cancel_reason": reason or "canceled", "context": record.get("context")})
        return self.get(instance_id)

    def retry(self, instance_id: str, user_id: str | None = None) -> dict[str, Any]:
        """A new instance that runs the same input from the start, linked both ways."""
        record = self._refresh(self._record(instance_id))
        if record["status"] not in ("failed", "canceled"):
            raise Conflict(f"only a failed or canceled instance can be retried; this one is {record['status']}")
        # Run for the same caller: its completion goes to the same webhook naming the same origin. Not the
        # correlation_id: the caller tags the instances it starts itself.
        request = StartInstance(definition_name=record["definition_name"], namespace=record.get("namespace"),
                                input_data=record.get("input") or {},
                                user_id=user_id or record.get("created_by"), tenant_id=record.get("tenant_id"),
                                webhook_url=record.get("webhook_url"), origin_instance=record.get("origin_instance"),
                                origin_zone=record.get("origin_zone"), origin_tenant_id=record.get("origin_tenant_id"),
                                origin_reference=record.get("origin_reference"),
                                **_pin_of(record))
        view, _ = self.start(request, definition=self._definitions.get(instance_key(record)))
        self._store.update(view["id"], {"retry_of": instance_id})
        self._store.update(instance_id, {"retried_by": view["id"]})
        return {**view, "retry_of": instance_id}

    def resume(self, instance_id: str) -> dict[str, Any]:
        """Continues a failed instance from the failed step; finished steps keep their outputs."""
        record = self._refresh(self._record(instance_id))
        if record["status"] != "failed":
            raise Conflict(f"only a failed instance can be resumed; this one is {record['status']}")
        summary = self._summary(record, self._log(record), ended="failed")
        definition = self._definitions.get(instance_key(record))
        try:
            self._store.update(instance_id, {"status": "running", "completed_at": None, "error": None,
                                             "output": None}, expect={"status": "failed"}, record=record)
        except TransitionRefused:
            raise Conflict("the instance changed meanwhile") from None
        runs = record.get("runs") or [{"execution_arn": record["execution_arn"]}]
        pinned = self._pinned_arn(record, definition)
        if pinned or definition["revision"] == record["revision"]:
            # Unchanged definition: Step Functions' own redrive restarts at the failed state.
            try:
                self._machines.redrive(record["execution_arn"])
            except RedriveUnavailable:
                pass
            else:
                runs = [*runs, {"execution_arn": record["execution_arn"], "kind": "redrive",
                                "started_at": iso(self._now())}]
                self._store.update(instance_id, {"runs": runs})
                self._publish("instance.started", {"id": instance_id, "workflow": record["definition_name"],
                                                   "run": "redrive"})
                return self.get(instance_id)
        # Otherwise (a new revision, or no redrive): a new execution of the current state machine whose
        # input carries the finished steps' outputs; the step runner and task registrar pass a step
        # straight through when its output is there.
        # A pinned instance runs its own revision again (its start recorded the version it ran).
        latest = {} if pinned else {"revision": definition["revision"], "version": definition["version"],
                                    "revision_number": definition.get("revision_number")}
        self._launch({**record, "runs": runs, **latest}, pinned or definition["state_machine_arn"],
                     steps=dict(summary.outputs), run=len(runs), kind="resume")
        return self.get(instance_id)

    def delete(self, instance_id: str, *, purge: bool = False) -> dict[str, Any]:
        record = self._refresh(self._record(instance_id))
        if record["status"] in LIVE:
            raise Conflict("the instance is still running; cancel it first")
        if purge:
            for task in (self._tasks.for_instance(instance_id) if self._tasks else []):
                self._tasks.purge(task["id"])
            events = self._events()
            if events is not None and hasattr(events, "purge"):
                events.purge(instance_id)
            self._store.delete(instance_id)
            return {"id": instance_id, "purged": True}
        self._store.update(instance_id, {"deleted_at": iso(self._now())}, record=record)
        return {"id": instance_id, "deleted": True}

    def _publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        """A lifecycle event in the instance's log; EventBridge gets it from the log's stream
        (service/lifecycle.py), so publishing is the log write."""
        events = self._events()
        if events is not None:
            events.record(detail["id"], detail_type, detail)


def _pin_of(record: dict[str, Any]) -> dict[str, Any]:
    """A retry is pinned as the instance it retries: to its alias (routed afresh) or to its revision."""
    if record.get("alias"):
        return {"alias": record["alias"]}
    if record.get("launch_target") and record.get("revision"):
        return {"revision": record["revision"]}
    return {}


def _execution_error(execution: dict[str, Any]) -> dict[str, Any] | None:
    if execution.get("error") or execution.get("cause"):
        return public_error(execution.get("error"), execution.get("cause"))
    return None
