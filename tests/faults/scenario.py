"""A fault scenario through the API: instances of a small workflow (one machine step, one human step),
their tasks completed or the instances canceled, the sweep run until nothing changes, then the
invariants every fault must leave intact checked against the stores and Step Functions themselves.

Observations use the runtime's own clients (no faults there); the app's calls go through the injector.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.aws.event_store import EventStore
from chalicelib.aws.instance_store import InstanceStore
from chalicelib.aws.task_store import TaskStore
from chalicelib.core.listing import instance_index
from stepflow_local.schedules import scheduled_event
from stepflow_local.status_events import StatusWatcher, status_handlers

FLOW = {"name": "fault_flow", "steps": [
    {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"ready": True}}},
    {"id": "review", "type": "human", "depends_on": ["prepare"], "assignee_group": "reviewers",
     "form_schema": {"type": "object", "properties": {"approved": {"type": "boolean"}, "reviewed": {"type": "string"}}}},
]}
LIVE = ("pending", "running", "waiting")
TERMINAL = ("completed", "failed", "canceled")
# What a 5xx body must never carry: stack traces, paths, raw AWS messages, ARNs, tokens.
INTERNALS = ("Traceback", 'File "', ".py", "botocore", "injected fault", "arn:aws", "/work", "token")
TRIES = 6  # a client's tries of one request on a 5xx


class Scenario:
    def __init__(self, api: Any, runtime: Any, faults: Any, app_module: Any):
        self.api = api
        self.runtime = runtime
        self.faults = faults
        self.app = app_module
        self.services = app_module.services
        ddb = runtime.client("dynamodb")
        self.instances = InstanceStore(ddb, runtime.table_names["instances"])
        self.tasks = TaskStore(ddb, runtime.table_names["tasks"])
        self.events = EventStore(ddb, runtime.table_names["events"])
        self.sfn = runtime.client("stepfunctions")
        self.watcher = StatusWatcher(runtime, status_handlers(app_module.app))
        self.responses: list[tuple[str, int, Any]] = []
        self.completed_ok: dict[str, dict[str, Any]] = {}  # task id -> output of a 200 completion
        self.ahead = timedelta(0)
        self.swept: Counter[str] = Counter()  # what the sweeps did, summed
        self.to_cancel: set[str] = set()

    # -- the client's side ---------------------------------------------------------------------
    def call(self, what: str, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        http = self.api.client.http
        url = self.api.prefix + path
        if method == "GET":
            response = http.get(url)
        else:
            response = http.post(url, body=json.dumps(body if body is not None else {}),
                                 headers={"content-type": "application/json", **(headers or {})})
        try:
            parsed = json.loads(response.body)
        except ValueError:
            parsed = response.body
        self.responses.append((what, response.status_code, parsed))
        return response.status_code, parsed

    def register(self) -> None:
        status, body = self.call("register", "POST", "/definitions", FLOW)
        assert status in (200, 201), body

    def start(self, n: int) -> str | None:
        """Starts instance n: keyed by header, keyed and tagged with a correlation_id, or neither (n % 3);
        a client retries a 5xx with its key, and without one it does not (a retry would start another)."""
        body: dict[str, Any] = {"definition_name": FLOW["name"], "input_data": {"n": n}}
        headers = {}
        if n % 3 == 0:
            headers["idempotency-key"] = f"order-{n}"
        elif n % 3 == 1:
            headers["idempotency-key"] = f"c-{n}"
            body["correlation_id"] = f"c-{n}"  # a tag only: the key is what makes the retry safe
        for _ in range(TRIES if n % 3 != 2 else 1):
            status, answer = self.call("start", "POST", "/instances", body, headers)
            if status in (200, 201):
                return answer["id"]
            if status < 500:
                raise AssertionError((status, answer))
        return None

    def act(self, instance_id: str, n: int, cancel: bool | None = None) -> None:
        """Cancels the instance (chosen once: `cancel`), or completes its task if it is open."""
        if cancel:
            self.to_cancel.add(instance_id)
        if instance_id in self.to_cancel:
            for _ in range(TRIES):
                status, body = self.call("cancel", "POST", f"/instances/{instance_id}/cancel", {"reason": "test"})
                if status < 500:
                    assert status in (200, 409), body
                    return
            return
        task = self.open_task(instance_id)
        if task is None:
            return
        output = {"approved": True, "reviewed": f"r-{n}"}
        for _ in range(TRIES):
            status, body = self.call("complete", "POST", f"/tasks/{task['id']}/complete",
                                     {"output_data": output, "completed_by": "ann"})
            if status == 200:
                assert body["status"] == "completed", body
                self.completed_ok[task["id"]] = output
                return
            if status < 500:
                # 409: an earlier try of ours completed it after all; 410: the workflow stopped waiting.
                assert status in (409, 410), body
                return

    # -- observing -----------------------------------------------------------------------------
    def all_instances(self) -> list[dict[str, Any]]:
        family, value = instance_index({"definition_name": FLOW["name"]}, tenant=None, include_deleted=True)
        items, start = [], None
        while True:
            page, start = self.instances.page(family, value, limit=100, start=start)
            items += page
            if not start:
                return [self.instances.get(i["id"]) for i in items]

    def open_task(self, instance_id: str) -> dict[str, Any] | None:
        return next((t for t in self.tasks.for_instance(instance_id) if t["status"] == "pending"), None)

    def waits(self, record: dict[str, Any]) -> bool:
        """Its task is open, or completed with its send still owed (the sweep resends it), and the
        registering function has returned (the step waits for the token), so a completion now is not
        racing the function's own failure."""
        tasks = self.tasks.for_instance(record["id"])
        if not any(t["status"] == "pending" or t.get("outbox_state") for t in tasks):
            return False
        events = self.sfn.get_execution_history(executionArn=record["execution_arn"], maxResults=1000)["events"]
        kinds = [e["type"] for e in events if e["type"] in ("TaskSubmitted", "TaskScheduled")]
        return bool(kinds) and kinds[-1] == "TaskSubmitted"

    def execution(self, arn: str | None) -> dict[str, Any] | None:
        return self.sfn.describe_execution(executionArn=arn) if arn else None

    def wait_until_settled(self, timeout: float = 20.0) -> None:
        """Until every recorded execution has either ended or has its task open (the step registers it
        a moment after the execution starts)."""
        deadline = time.monotonic() + timeout
        while True:
            unsettled = []
            for record in self.all_instances():
                execution = self.execution(record.get("execution_arn"))
                if execution and execution["status"] == "RUNNING" and not self.waits(record):
                    unsettled.append(record["id"])
            if not unsettled:
                return
            assert time.monotonic() < deadline, f"still starting: {unsettled}"
            time.sleep(0.1)

    # -- converging ----------------------------------------------------------------------------
    @contextmanager
    def later(self, step: timedelta = timedelta(minutes=10)):
        """The services' clock moved ahead (every interrupted operation is past its grace period)."""
        self.ahead += step
        owners = (self.services.instances, self.services.tasks, self.services.notifier)
        saved = [owner._now for owner in owners]
        for owner in owners:
            owner._now = lambda: datetime.now(UTC) + self.ahead
        try:
            yield
        finally:
            for owner, now in zip(owners, saved, strict=True):
                owner._now = now

    def sweep(self) -> dict[str, int]:
        with self.later():
            stats = self.app.overdue_sweep(scheduled_event("overdue_sweep", self.runtime.region), None)
        self.swept.update(stats)
        return stats

    def round(self) -> None:
        """What AWS does on its own between requests: status events delivered, the scheduled sweep."""
        self.watcher.poll()
        self.sweep()

    def snapshot(self) -> tuple[Any, ...]:
        instances = tuple(sorted((r["id"], r["status"], r.get("chore"), r.get("execution_arn"))
                                 for r in self.all_instances()))
        tasks = tuple(sorted((t["id"], t["status"], t.get("outbox_state"))
                             for r in instances for t in self.tasks.for_instance(r[0])))
        return instances, tasks

    def converge(self, timeout: float = 40.0) -> int:
        """Rounds until a round changes nothing and nothing is left in flight; returns how many."""
        deadline = time.monotonic() + timeout
        before, rounds = None, 0
        while True:
            self.round()
            rounds += 1
            self.wait_until_settled(max(1.0, deadline - time.monotonic()))
            now = self.snapshot()
            if now == before and not self.in_flight():
                return rounds
            assert time.monotonic() < deadline, f"not quiescent after {rounds} rounds: {self.in_flight()}"
            before = now

    def in_flight(self) -> list[str]:
        """Work the services still owe: chores, undelivered completions, ended executions not settled."""
        owed = []
        for record in self.all_instances():
            if record.get("chore"):
                owed.append(f"{record['id']}: chore {record['chore']}")
            for task in self.tasks.for_instance(record["id"]):
                if task.get("outbox_state"):
                    owed.append(f"{task['id']}: undelivered")
            execution = self.execution(record.get("execution_arn"))
            if record["status"] in LIVE and (execution is None or execution["status"] != "RUNNING"):
                owed.append(f"{record['id']}: {record['status']} without a live execution")
        return owed

    def finish(self) -> None:
        """With faults off: what is still open gets its answer (completed, or canceled if it was chosen
        for that), then everything converges to an end."""
        for record in self.all_instances():
            if record["status"] in LIVE:
                self.act(record["id"], record["input"]["n"])
        self.wait_for_ends()
        self.converge()

    def wait_for_ends(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            running = [r["id"] for r in self.all_instances()
                       if (self.execution(r.get("execution_arn")) or {}).get("status") == "RUNNING"
                       and not self.open_task(r["id"])]
            if not running:
                return
            assert time.monotonic() < deadline, f"executions still running: {running}"
            time.sleep(0.1)

    # -- the invariants ------------------------------------------------------------------------
    def check(self) -> dict[str, int]:
        """Every guarantee at once; returns counts for the test to assert coverage with."""
        problems: list[str] = []
        for what, status, body in self.responses:
            if status >= 500:
                text = json.dumps(body)
                if status not in (502, 503) or any(marker in text for marker in INTERNALS):
                    problems.append(f"{what}: {status} {text}")
        counts = {"instances": 0, "completed": 0, "failed": 0, "canceled": 0, "tasks_closed": 0}
        running = {e for e in self.runtime.running_executions()}
        for record in self.all_instances():
            counts["instances"] += 1
            status = record["status"]
            if status in LIVE:
                live = record.get("execution_arn") in running and self.open_task(record["id"])
                if not live:
                    problems.append(f"{record['id']} stuck {status}")
                continue
            counts[status] += 1
            if record.get("chore"):
                problems.append(f"{record['id']} ended with chore {record['chore']}")
            log = self.events.after(record["id"], None, 1000)
            for task in self.tasks.for_instance(record["id"]):
                problems += self._check_task(record, task, log)
                counts["tasks_closed"] += task["status"] in ("expired", "canceled")
        for task_id, output in self.completed_ok.items():
            task = self.tasks.get(task_id)
            if task is None or task["status"] != "completed" or task["output_data"] != output:
                problems.append(f"200 completion of {task_id} lost: {task and task['status']}")
        for sent in self.faults.sent_success.values():
            if sent > 1:
                problems.append(f"SendTaskSuccess accepted {sent} times for one token")
        assert not problems, "\n".join(problems)
        return counts

    def _check_task(self, instance: dict[str, Any], task: dict[str, Any], log: list[dict[str, Any]]) -> list[str]:
        problems = []
        mine = [e for e in log if e["data"].get("task_id") == task["id"]]
        completions = [e for e in mine if e["type"] == "task.completed"]
        if task["status"] == "pending":
            problems.append(f"task {task['id']} open though its instance is {instance['status']}")
        elif task["status"] == "completed":
            # No completion lost: the instance took it (its data has the output), sent exactly once.
            reviewed = (instance.get("output") or {}).get("reviewed")
            if instance["status"] != "completed" or reviewed != task["output_data"]["reviewed"]:
                problems.append(f"completion of {task['id']} lost: instance {instance['status']}")
            if self.faults.sent_success.get(task["token"], 0) != 1:
                problems.append(f"task {task['id']} sent {self.faults.sent_success.get(task['token'], 0)} times")
            if len(completions) > 1:
                problems.append(f"task {task['id']} logged task.completed {len(completions)} times")
        else:
            if completions:
                problems.append(f"task {task['id']} is {task['status']} but logged task.completed")
            if not task.get("closed_reason"):
                problems.append(f"task {task['id']} closed without a reason")
        return problems
