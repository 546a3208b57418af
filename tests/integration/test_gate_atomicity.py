"""A dependency gate is released exactly once, proven on the in-memory DynamoDB of the local runtime and on
DynamoDB Local: its dependencies finishing at the same instant as the gated step registers, repeated
arrivals, and a release whose SendTaskSuccess is lost."""

from __future__ import annotations

import itertools
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.aws.gate_store import GateStore
from chalicelib.resources import TRIGGERS
from chalicelib.runtime.gates import Gates

_tables = itertools.count()
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:stepflow-w:inst-{n}"
ORDER = ["p0", "p1", "p2", "p3", "gated"]


@pytest.fixture
def store(ddb):
    name = f"gates_{next(_tables)}"
    ddb.create_table(**TRIGGERS.create_table_request(name))
    return GateStore(ddb, name)


class Sent:
    def __init__(self, fail_first: int = 0):
        self.calls: list[tuple[str, dict]] = []
        self._fail = fail_first
        self._lock = threading.Lock()

    def __call__(self, token, output):
        with self._lock:
            if self._fail:
                self._fail -= 1
                raise ConnectionError("lost the connection before Step Functions answered")
            self.calls.append((token, output))


def _events(n: int, parents: list[str]):
    execution = EXECUTION.format(n=n)
    gate = {"execution": execution, "step": "gated", "token": f"token-{n}", "waits": parents,
            "steps": {"p0": {"from": "p0"}}, "input": {"x": n}}
    arrivals = [{"execution": execution, "step": p, "releases": ["gated"], "input": {"x": n}} for p in parents]
    return gate, arrivals


def test_parents_finishing_at_the_same_instant_as_the_gate_registers_release_it_once(store):
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads switch inside each store call: a check-then-write race shows
    try:
        for n in range(12):
            sent = Sent()
            gates = Gates(store, sent)
            parents = ["p1", "p2", "p3"]
            gate, arrivals = _events(n, parents)
            # Every parent arrives twice at once (a retried Lambda): still one release.
            jobs = [None] + [e for e in arrivals for _ in range(2)]
            barrier = threading.Barrier(len(jobs))

            def run(event, gates=gates, gate=gate, barrier=barrier):
                barrier.wait()
                if event is None:
                    gates.wait(gate, ORDER)
                else:
                    gates.arrive(event, {event["step"]: {"from": event["step"]}}, ORDER)

            with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                for future in [pool.submit(run, job) for job in jobs]:
                    future.result()
            assert len(sent.calls) == 1, sent.calls
            token, output = sent.calls[0]
            assert token == f"token-{n}"
            assert output["steps"] == {p: {"from": p} for p in ["p0", *parents]}
            assert output["data"]["x"] == n and output["data"]["from"] in ("p0", "p1", "p2", "p3")
    finally:
        sys.setswitchinterval(previous)


def test_a_gated_step_that_is_its_own_gate_runs_once_whether_it_or_an_arrival_opens_it(store):
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for n in range(12):
            failed = Sent()
            gates = Gates(store, Sent(), lambda token, error, cause, failed=failed: failed(token, (error, cause)))
            gate, arrivals = _events(1000 + n, ["p1", "p2", "p3"])
            jobs = [None] + [e for e in arrivals for _ in range(2)]
            barrier = threading.Barrier(len(jobs))
            opened: list[dict] = []

            def run(event, gates=gates, gate=gate, barrier=barrier, opened=opened):
                barrier.wait()
                if event is None:
                    steps = gates.open(gate)
                    if steps is not None:
                        opened.append(steps)
                else:
                    gates.arrive(event, {event["step"]: {"from": event["step"]}}, ORDER)

            with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                for future in [pool.submit(run, job) for job in jobs]:
                    future.result()
            assert len(opened) + len(failed.calls) == 1, (opened, failed.calls)
            expected = {p: {"from": p} for p in ["p0", "p1", "p2", "p3"]}
            if opened:  # the registration completed the gate: the step runs in its own state
                assert opened[0] == expected
            else:  # an arrival did: it fails the token, and <step>__run runs the step with the cause's outputs
                token, (error, cause) = failed.calls[0]
                assert token == f"token-{1000 + n}" and error == "Stepflow.GateOpen"
                assert gates.opened({**gate, "outcome": cause}) == expected
    finally:
        sys.setswitchinterval(previous)


def test_a_step_that_is_its_own_gate_and_finds_it_open_reads_it_and_writes_nothing(store, ddb):
    failed = Sent()
    gates = Gates(store, Sent(), lambda token, error, cause: failed(token, (error, cause)))
    gate, arrivals = _events(2000, ["p1", "p2"])
    for event in arrivals:
        gates.arrive(event, {event["step"]: {"from": event["step"]}}, ORDER)
    before = store.read("inst-2000", "inst-2000", "gated")
    writes = []
    original = ddb.update_item
    ddb.update_item = lambda **kwargs: writes.append(kwargs) or original(**kwargs)
    try:
        assert gates.open(gate) == {p: {"from": p} for p in ["p0", "p1", "p2"]}
        # A repeated arrival (a retried Lambda) finds no registered token: it releases nothing.
        gates.arrive(arrivals[0], {"p1": {"from": "p1"}}, ORDER)
    finally:
        ddb.update_item = original
    assert [w["UpdateExpression"].startswith("SET expires_at") for w in writes] == [True], writes  # the arrival
    after = store.read("inst-2000", "inst-2000", "gated")
    assert after["token"] is None and before["token"] is None and failed.calls == []


def test_a_release_too_large_for_a_failure_cause_reads_its_outputs_from_the_gate(store):
    failed = Sent()
    gates = Gates(store, Sent(), lambda token, error, cause: failed(token, cause))
    gate, arrivals = _events(1100, ["p1"])
    assert gates.open(gate) is None
    big = {"p1": {"text": "x" * 40000}}
    gates.arrive(arrivals[0], big, ORDER)
    [(token, cause)] = failed.calls
    assert cause == ""
    assert gates.opened({**gate, "outcome": cause}) == {**big, "p0": {"from": "p0"}}


def test_a_gate_whose_dependencies_had_finished_before_it_registers_opens_at_once(store):
    sent = Sent()
    gates = Gates(store, sent)
    gate, arrivals = _events(100, ["p1", "p2"])
    for event in arrivals:
        gates.arrive(event, {event["step"]: {}}, ORDER)
    assert sent.calls == []  # nothing registered yet: no token to release
    gates.wait(gate, ORDER)
    assert [token for token, _ in sent.calls] == ["token-100"]
    gates.arrive(arrivals[0], {"p1": {}}, ORDER)  # a late repeat changes nothing
    assert len(sent.calls) == 1


def test_a_release_that_could_not_be_sent_is_sent_by_the_next_arrival(store):
    sent = Sent(fail_first=1)
    gates = Gates(store, sent)
    gate, arrivals = _events(200, ["p1"])
    gates.wait(gate, ORDER)
    with pytest.raises(ConnectionError):
        gates.arrive(arrivals[0], {"p1": {}}, ORDER)  # the runner's Lambda fails; Step Functions retries it
    gates.arrive(arrivals[0], {"p1": {}}, ORDER)
    assert [token for token, _ in sent.calls] == ["token-200"]


def test_closing_an_instance_removes_its_gates_and_tokens(store):
    gates = Gates(store, Sent())
    gate, _ = _events(300, ["p1"])
    gates.wait(gate, ORDER)
    assert [g["token"] for g in store.for_instance("inst-300")] == ["token-300"]
    assert store.close_for_instance("inst-300") == 1
    assert store.for_instance("inst-300") == []
