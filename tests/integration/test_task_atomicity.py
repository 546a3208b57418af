"""Exactly-once task completion and escalation, proven on every store: the in-memory DynamoDB of the tests
and `make run EPHEMERAL=1` (moto in the LocalRuntime, serialised by stepflow_local.moto_patches), DynamoDB
Local in memory, and DynamoDB Local on disk as `make run` keeps its data (stepflow_local/dynamodb_local.py)."""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from chalicelib.aws.task_store import TaskStore
from chalicelib.core.times import iso
from chalicelib.errors import Conflict
from chalicelib.resources import TASKS
from chalicelib.service.tasks import TaskService
from stepflow_local.dynamodb_local import DynamoDBLocalProcess
from tests.dynamodb_local import DynamoDBLocal

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_tables = itertools.count()


BACKENDS = ("default_store", "dynamodb_local", "kept_store")


@pytest.fixture(scope="module")
def kept_store(tmp_path_factory):
    """DynamoDB Local on a database directory, started the way the local service starts it."""
    folder = tmp_path_factory.mktemp("kept")
    server = DynamoDBLocalProcess(folder / "dynamodb", folder / "dynamodb.log").start()
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def ddb(request):
    """A DynamoDB client of each store: the LocalRuntime's in memory, DynamoDB Local in memory and on disk."""
    if request.param == "default_store":
        return request.getfixturevalue("local_aws").client("dynamodb")
    if request.param == "kept_store":
        return DynamoDBLocal.client_for(request.getfixturevalue("kept_store").endpoint)
    return request.getfixturevalue("dynamodb").client()


@contextlib.contextmanager
def eager_thread_switches():
    # Threads switch every 5 ms by default, so a race inside one emulated write is rare; every 10 us,
    # a store that checks a condition and writes in separate steps shows two winners within a few rounds.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


class FakeMachines:
    """Records callbacks; can fail the first N deliveries to mimic a crash before SendTaskSuccess."""

    def __init__(self, fail_first: int = 0):
        self.successes: list[tuple[str, dict]] = []
        self.failures: list[tuple[str, str]] = []
        self._fail = fail_first
        self._lock = threading.Lock()

    def send_success(self, token, output):
        with self._lock:
            if self._fail:
                self._fail -= 1
                raise ConnectionError("lost the connection before Step Functions answered")
            self.successes.append((token, output))

    def send_failure(self, token, error, cause):
        with self._lock:
            self.failures.append((token, error))


class Publisher:
    def __init__(self):
        self.events: list[tuple[str, dict]] = []
        self._lock = threading.Lock()

    def publish(self, detail_type, detail):
        with self._lock:
            self.events.append((detail_type, detail))


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


LOADER = SimpleNamespace(load=lambda workflow, revision: SimpleNamespace(order=("submit", "review")))


@pytest.fixture
def world(ddb):
    client = ddb
    name = f"tasks_{next(_tables)}"
    client.create_table(**TASKS.create_table_request(name))
    store = TaskStore(client, name)
    machines, publisher, clock = FakeMachines(), Publisher(), Clock(T0)
    service = TaskService(store, machines, LOADER, publisher, clock)
    return SimpleNamespace(store=store, machines=machines, publisher=publisher, clock=clock, service=service)


def task(i, **extra):
    record = {
        "id": f"task{i:04d}", "instance_id": f"inst{i}", "execution_arn": f"arn:exec:inst{i}", "workflow": "w",
        "revision": "r", "step_name": "review", "kind": "human", "title": "Review", "status": "pending",
        "created_at": iso(T0), "attempt": 1, "token": f"token-{i}", "assignee_group": "reviewers",
        "snapshot": {"input": {"amount": i}, "steps": {"submit": {"ok": True}}},
        "form_schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}},
    }
    record.update(extra)
    return record


def test_32_concurrent_completions_of_each_task_give_exactly_one_success(world):
    tasks = [task(i) for i in range(12)]
    for record in tasks:
        world.store.put(record)
    assert world.service.metrics(tenant=None)["pending_by_group"] == {"reviewers": 12}
    barrier = threading.Barrier(32)

    def complete(task_id, who):
        barrier.wait()
        try:
            world.service.complete(task_id, {"approved": who % 2 == 0}, f"user{who}")
            return "ok"
        except Conflict:
            return "conflict"

    with ThreadPoolExecutor(max_workers=32) as pool, eager_thread_switches():
        for record in tasks:
            outcomes = list(pool.map(lambda who, tid=record["id"]: complete(tid, who), range(32)))
            assert outcomes.count("ok") == 1, outcomes
            assert outcomes.count("conflict") == 31
    # The counters moved once per task, in the winner's transaction: none is pending, none below zero.
    assert world.store.counters(None) == {"pending": 0, "group=reviewers": 0}
    delivered = [token for token, _ in world.machines.successes]
    assert sorted(delivered) == sorted(r["token"] for r in tasks)  # one SendTaskSuccess per task
    for record in tasks:
        stored = world.store.get(record["id"])
        assert stored["status"] == "completed" and "outbox_state" not in stored
        # The resumed state carries the winner's form and the recomputed data.
        output = next(o for t, o in world.machines.successes if t == record["token"])
        assert output["steps"]["review"] == stored["output_data"]
        assert output["data"]["approved"] == stored["output_data"]["approved"]


def test_overlapping_sweeps_escalate_each_overdue_task_once_and_read_only_due_items(world):
    for i in range(300):  # not due: no due date, or due later
        world.store.put(task(i, due_at=iso(T0 + timedelta(days=2))) if i % 2 else task(i))
    due = [task(1000 + i, due_at=iso(T0 + timedelta(minutes=i)), escalation={"action": "reassign",
                                                                                "assignee_group": "leads"})
           for i in range(5)]
    for record in due:
        world.store.put(record)
    world.clock.now = T0 + timedelta(hours=1)
    barrier = threading.Barrier(4)

    def sweep():
        barrier.wait()
        return world.service.sweep()

    with ThreadPoolExecutor(max_workers=4) as pool, eager_thread_switches():
        results = list(pool.map(lambda _: sweep(), range(4)))
    assert sum(r["escalated"] for r in results) == 5
    assert all(r["read"] <= 5 for r in results), results  # 300 other tasks are never read
    overdue_events = [d for kind, d in world.publisher.events if kind == "task.overdue"]
    assert sorted(e["task"]["id"] for e in overdue_events) == sorted(r["id"] for r in due)
    for record in due:
        stored = world.store.get(record["id"])
        assert stored["assignee_group"] == "leads" and stored["escalated_at"] == iso(world.clock.now)
    assert world.service.sweep() == {"read": 0, "escalated": 0, "reminded": 0, "redelivered": 0}
    listed = world.service.list(tenant=None, overdue=True, limit=100)["items"]
    assert sorted(t["id"] for t in listed) == sorted(r["id"] for r in due)
    metrics = world.service.metrics(tenant=None)
    assert metrics["overdue_count"] == 5 and metrics["oldest_overdue_age_seconds"] == 3600
    assert metrics["pending_total"] == 305


def test_overdue_lists_and_metrics_are_right_at_the_due_time_before_any_sweep(world):
    for i in range(3):
        world.store.put(task(i, due_at=iso(T0 + timedelta(seconds=10 * (i + 1)))))  # due at +10, +20, +30 s
    world.store.put(task(9))  # no due date: never overdue

    def overdue():
        listed = [t["id"] for t in world.service.list(tenant=None, overdue=True, limit=10)["items"]]
        return listed, world.service.metrics(tenant=None)

    world.clock.now = T0 + timedelta(seconds=9, microseconds=999_000)
    assert overdue()[0] == [] and overdue()[1]["overdue_count"] == 0
    world.clock.now = T0 + timedelta(seconds=10)  # the first is due now: overdue at once, no sweep has run
    listed, metrics = overdue()
    assert listed == ["task0000"] and metrics["overdue_count"] == 1
    assert metrics["oldest_overdue_due_at"] == iso(T0 + timedelta(seconds=10))
    world.clock.now = T0 + timedelta(seconds=25)
    listed, metrics = overdue()
    assert listed == ["task0001", "task0000"] and metrics["overdue_count"] == 2  # the latest due first
    assert metrics["oldest_overdue_age_seconds"] == 15
    # The sweep escalates (it moves a task from the unswept backlog to the counter): the numbers hold.
    assert world.service.sweep()["escalated"] == 2
    assert overdue() == (listed, metrics)
    world.service.complete("task0000", {"approved": True}, "ann")
    listed, metrics = overdue()
    assert listed == ["task0001"] and metrics["overdue_count"] == 1


def test_escalation_can_fail_the_step_with_a_named_error_or_complete_it(world):
    world.store.put(task(1, due_at=iso(T0), escalation={"action": "fail", "error": "Expense.NotReviewed"}))
    world.store.put(task(2, due_at=iso(T0), escalation={"action": "complete", "output": {"approved": False}}))
    world.clock.now = T0 + timedelta(seconds=1)
    assert world.service.sweep()["escalated"] == 2
    assert world.machines.failures == [("token-1", "Expense.NotReviewed")]
    assert world.store.get("task0001")["status"] == "expired"
    [(token, output)] = world.machines.successes
    assert token == "token-2" and output["steps"]["review"] == {"approved": False}
    assert world.store.get("task0002")["completed_by"] == "stepflow:escalation"


def test_an_escalation_completes_only_within_the_steps_declared_writes(world):
    # Task 1 keeps its answer under a namespace; task 2's configured answer would replace a decided value.
    world.store.put(task(1, due_at=iso(T0), output_namespace="auto_review",
                         escalation={"action": "complete", "output": {"approved": False}}))
    world.store.put(task(2, due_at=iso(T0), snapshot={"input": {"amount": 2, "approved": True}, "steps": {}},
                         escalation={"action": "complete", "output": {"approved": False}}))
    world.clock.now = T0 + timedelta(seconds=1)
    assert world.service.sweep()["escalated"] == 2
    [(token, output)] = world.machines.successes
    assert token == "token-1" and output["steps"]["review"] == {"auto_review": {"approved": False}}
    assert output["data"]["auto_review"] == {"approved": False} and "approved" not in output["data"]
    refused = world.store.get("task0002")
    assert refused["status"] == "pending" and refused["escalated_at"] and "output_data" not in refused
    assert [t["id"] for t in world.service.list(tenant=None, overdue=True)["items"]] == ["task0002"]


def test_reminders_are_sent_once(world):
    world.store.put(task(1, due_at=iso(T0 + timedelta(hours=2)), reminder_at=iso(T0 + timedelta(hours=1))))
    world.clock.now = T0 + timedelta(minutes=61)
    assert world.service.sweep()["reminded"] == 1
    assert world.service.sweep()["reminded"] == 0
    assert [kind for kind, _ in world.publisher.events] == ["task.reminder"]


def test_a_completion_interrupted_before_step_functions_is_redelivered_by_the_sweep(world):
    world.machines._fail = 1
    world.store.put(task(7))
    world.service.complete("task0007", {"approved": True}, "ann")
    assert world.machines.successes == []  # the delivery was lost...
    assert world.store.get("task0007")["status"] == "completed"  # ...but the completion was recorded
    world.clock.now = T0 + timedelta(seconds=10)
    assert world.service.sweep()["redelivered"] == 0  # too recent: it may still be in flight
    world.clock.now = T0 + timedelta(minutes=5)
    assert world.service.sweep()["redelivered"] == 1
    assert [t for t, _ in world.machines.successes] == ["token-7"]
    assert world.service.sweep()["redelivered"] == 0  # delivered once, never twice


OVERDUE_REVIEW = {
    "name": "overdue_review", "version": "1.0.0",
    "steps": [{"id": "review", "type": "human", "title": "Review", "assignee_group": "reviewers", "due_in": 1,
               "escalation": {"action": "reassign", "assignee_group": "leads"},
               "form_schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}}}],
    "edges": [], "initial_step": "review", "terminal_steps": ["review"],
}


def test_overlapping_sweep_handlers_on_the_local_runtime_escalate_each_task_once(api, local_aws):
    """The app's own overdue_sweep, run from four threads at once on the store `make run` uses."""
    sqs, events = local_aws.client("sqs"), local_aws.client("events")
    queue = sqs.create_queue(QueueName="overdue-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="overdue", EventPattern='{"detail-type": ["task.overdue"]}')
    events.put_targets(Rule="overdue", Targets=[{"Id": "queue", "Arn": queue_arn}])
    event = api.client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                                resources=[])
    # Chalice builds an event handler's middleware chain on its first call, and that is not thread-safe
    # ("generator already executing"); Lambda never runs two invocations in one process, and the local
    # runtime's scheduler runs one sweep at a time. One sweep before any task exists builds it.
    api.client.lambda_.invoke("overdue_sweep", event)
    assert api.post("/definitions", OVERDUE_REVIEW)[0] in (200, 201)
    ids = [api.post("/instances", {"definition_name": "overdue_review", "input_data": {}})[1]["id"] for _ in range(6)]
    tasks = [api.one_task(f"instance_id={i}") for i in ids]
    latest_due = max(t["due_date"] for t in tasks)
    deadline = time.monotonic() + 10
    while iso(datetime.now(UTC)) <= latest_due:  # due_in is one second: wait for the clock to pass it
        assert time.monotonic() < deadline
        time.sleep(0.1)

    barrier = threading.Barrier(4)

    def sweep(_):
        barrier.wait()
        return api.client.lambda_.invoke("overdue_sweep", event).payload

    with ThreadPoolExecutor(max_workers=4) as pool, eager_thread_switches():
        results = list(pool.map(sweep, range(4)))
    assert sum(r["escalated"] for r in results) == len(tasks), results

    published = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        published += [json.loads(m["Body"])["detail"]["task"]["id"] for m in batch]
    assert sorted(published) == sorted(t["id"] for t in tasks)  # one task.overdue per task, none twice
    for t in tasks:
        status, stored = api.get(f"/tasks/{t['id']}")
        assert status == 200 and stored["assignee_group"] == "leads" and stored["escalated_at"]
