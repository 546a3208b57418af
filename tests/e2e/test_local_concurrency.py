"""End to end under load: racing completions of one task through the running local service give exactly one
winner, and reads never fail, on both of its stores: kept on disk (DynamoDB Local, as `make run` keeps its
data) and in memory (--ephemeral: moto, serialised by stepflow_local.moto_patches)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.local_service import LocalService, call

pytestmark = pytest.mark.e2e

INSTANCES = 16
COMPLETERS = 32
REVIEW = {
    "name": "race_review", "version": "1.0.0",
    "steps": [{"id": "review", "type": "human", "title": "Review", "assignee_group": "reviewers",
               "form_schema": {"type": "object", "required": ["approved"],
                               "properties": {"approved": {"type": "boolean"}, "comments": {"type": "string"}}}}],
    "edges": [], "initial_step": "review", "terminal_steps": ["review"],
}


@pytest.fixture(scope="module", params=["kept", "in_memory"])
def base(request, tmp_path_factory):
    # Metrics on: every request flushes EMF metrics, which is what many request threads must survive.
    folder = tmp_path_factory.mktemp("race")
    started = LocalService(folder / "service.log", env={"POWERTOOLS_METRICS_DISABLED": "false"},
                           data_dir=folder / "data" if request.param == "kept" else None)
    try:
        started.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield started.base + "/workflows"
    started.stop()


def until(condition, timeout: float, what: str, describe=lambda: ""):
    """condition() polled until it returns something truthy (returned), or the test fails at the deadline,
    saying what describe() finds then."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; {describe()}")
        time.sleep(0.1)


def where_it_is(base: str, instance_id: str) -> str:
    """The instance's status, error and step history, for a failure message."""
    status, instance = call("GET", f"{base}/instances/{instance_id}")
    if status != 200:
        return f"GET /instances/{instance_id}: {status} {instance}"
    steps = [(s.get("step_name"), s.get("status")) for s in instance.get("step_history") or []]
    return f"the instance is {instance.get('status')} (error {instance.get('error')!r}), its steps {steps}"


def the_task(base: str, instance_id: str):
    status, page = call("GET", f"{base}/tasks?instance_id={instance_id}")
    assert status == 200, page
    return page["items"][0] if page["items"] else None


class Readers:
    """Lists instances and tasks in a loop while the race runs; every answer's status is counted."""

    def __init__(self, base: str, threads: int = 2):
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._read, args=(base, i), daemon=True) for i in range(threads)]

    def _read(self, base: str, i: int) -> None:
        paths = ("/instances?limit=50", "/tasks?status=pending&limit=50", "/tasks?status=completed&limit=50")
        n = i
        while not self._stop.is_set():
            status, _ = call("GET", base + paths[n % len(paths)])
            n += 1
            with self._lock:
                self.statuses[status] += 1

    def __enter__(self) -> Readers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def test_racing_completions_have_one_winner_and_reads_never_fail(base):
    status, body = call("POST", f"{base}/definitions", REVIEW)
    assert status in (200, 201), body
    instance_ids = []
    for _ in range(INSTANCES):
        status, started = call("POST", f"{base}/instances", {"definition_name": "race_review", "input_data": {}})
        assert status == 201, started
        instance_ids.append(started["id"])
    tasks = {i: until(lambda i=i: the_task(base, i), 60, f"the task of {i}",
                      lambda i=i: where_it_is(base, i))["id"] for i in instance_ids}

    def complete(task_id: str, who: int, barrier: threading.Barrier) -> tuple[int, dict, dict]:
        output = {"approved": who % 2 == 0, "comments": f"{task_id} by user{who}"}
        barrier.wait()
        status, body = call("POST", f"{base}/tasks/{task_id}/complete",
                            {"output_data": output, "completed_by": f"user{who}"})
        return status, body, output

    winners = {}
    with Readers(base) as readers, ThreadPoolExecutor(max_workers=COMPLETERS) as pool:
        for instance_id, task_id in tasks.items():
            barrier = threading.Barrier(COMPLETERS)
            outcomes = list(pool.map(lambda who, t=task_id, b=barrier: complete(t, who, b), range(COMPLETERS)))
            statuses = Counter(status for status, _, _ in outcomes)
            assert statuses[200] == 1 and statuses[200] + statuses[409] + statuses[410] == COMPLETERS, statuses
            [(_, winner, output)] = [o for o in outcomes if o[0] == 200]
            assert winner["completed_by"] == f"user{output['comments'].rsplit('user', 1)[1]}"
            winners[instance_id] = (winner, output)
    assert readers.statuses[200] > 0 and set(readers.statuses) == {200}, readers.statuses

    for instance_id, (winner, output) in winners.items():
        done = until(lambda i=instance_id: (lambda b: b if b["status"] != "waiting" and b["status"] != "running"
                                            else None)(call("GET", f"{base}/instances/{i}")[1]),
                     30, f"instance {instance_id} to finish")
        assert done["status"] == "completed", done
        assert done["context_data"] == output  # the winner's answer, nobody else's
        stored = call("GET", f"{base}/tasks/{winner['id']}")[1]
        assert stored["completed_by"] == winner["completed_by"] and stored["output_data"] == output
