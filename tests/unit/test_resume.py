"""Resume: Step Functions' redrive when the definition is unchanged, otherwise a continuation run."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.aws.state_machines import RedriveUnavailable
from chalicelib.core.model import Definition
from chalicelib.service.instances import InstanceService

DEFINITION = Definition.model_validate({"name": "w", "steps": [
    {"id": "a", "type": "machine", "task_type": "util.log", "config": {"message": "a"}},
    {"id": "b", "type": "machine", "task_type": "util.log", "config": {"message": "b"}, "depends_on": ["a"]}]})
T = datetime(2026, 3, 1, tzinfo=UTC)


def event(i, kind, **details):
    return {"id": i, "previousEventId": i - 1, "type": kind, "timestamp": T, **details}


# a succeeded, b failed: what the history of the failed execution says.
HISTORY = [
    event(1, "ExecutionStarted"),
    event(2, "TaskStateEntered", stateEnteredEventDetails={"name": "a"}),
    event(3, "TaskScheduled"),
    event(4, "TaskStateExited", stateExitedEventDetails={"name": "a", "output": '{"steps": {"a": {"x": 1}}}'}),
    event(5, "TaskStateEntered", stateEnteredEventDetails={"name": "b"}),
    event(6, "TaskScheduled"),
    event(7, "TaskFailed", taskFailedEventDetails={"error": "Boom", "cause": "no"}),
    event(8, "ExecutionFailed", executionFailedEventDetails={"error": "Boom", "cause": "no"}),
]


class Store:
    def __init__(self, record):
        self.record = record

    def get(self, instance_id):
        return dict(self.record) if instance_id == self.record["id"] else None

    def update(self, instance_id, changes, *, expect=None, expect_not=None, record=None):
        if any(self.record.get(k) != v for k, v in (expect or {}).items()):
            raise TransitionRefused(instance_id)
        if any(self.record.get(k) in v for k, v in (expect_not or {}).items()):
            raise TransitionRefused(instance_id)
        self.record.update(changes)


class Machines:
    def __init__(self, redrive_works):
        self.redrive_works = redrive_works
        self.redriven, self.started = [], []

    def describe(self, arn):
        return {"executionArn": arn, "status": "FAILED", "error": "Boom", "cause": "no"}

    def history(self, arn):
        return HISTORY

    def redrive(self, arn):
        if not self.redrive_works:
            raise RedriveUnavailable("not here")
        self.redriven.append(arn)

    def start(self, machine_arn, name, payload):
        self.started.append((name, payload))
        return f"arn:exec:{name}"


def service(revision_now, redrive_works):
    record = {"id": "i1", "definition_name": "w", "revision": "r1", "status": "failed", "input": {"q": 1},
              "execution_arn": "arn:exec:i1", "runs": [{"execution_arn": "arn:exec:i1", "kind": "start"}],
              "created_at": "2026-03-01T00:00:00.000Z", "completed_at": "2026-03-01T00:01:00.000Z"}
    store, machines = Store(record), Machines(redrive_works)
    definitions = SimpleNamespace(get=lambda name: {"revision": revision_now, "version": "1", "name": "w",
                                                    "state_machine_arn": "arn:sm:w"})
    loader = SimpleNamespace(load=lambda name, rev: SimpleNamespace(definition=DEFINITION, order=("a", "b")))
    return InstanceService(definitions, store, machines, loader, lambda: T), store, machines


def test_unchanged_definition_is_redriven_in_place():
    svc, store, machines = service("r1", redrive_works=True)
    svc.resume("i1")
    assert machines.redriven == ["arn:exec:i1"] and machines.started == []
    assert [r["kind"] for r in store.record["runs"]] == ["start", "redrive"]
    assert store.record["execution_arn"] == "arn:exec:i1"


def test_without_redrive_a_continuation_carries_the_finished_steps():
    svc, store, machines = service("r1", redrive_works=False)
    svc.resume("i1")
    [(name, payload)] = machines.started
    assert name == "i1--1"
    assert payload == {"input": {"q": 1}, "steps": {"a": {"x": 1}}, "data": {"q": 1, "x": 1}}
    assert [r["kind"] for r in store.record["runs"]] == ["start", "resume"]


def test_a_new_revision_is_continued_not_redriven():
    svc, _, machines = service("r2", redrive_works=True)
    svc.resume("i1")
    assert machines.redriven == [] and machines.started[0][0] == "i1--1"
