"""The task-registering Lambda failing: 30 % of its invocations refused by Lambda (the state machine
retries those) and 30 % of its runs dying after the task was stored (no retry: the instance fails).
Every failed instance's task is closed, every other one completes."""

from __future__ import annotations

import random
import threading

N = 10


class RegistrarStopped(Exception):
    """The function stopped after storing its task (a timeout, say): Step Functions sees it fail."""


def test_task_registrar_failures_fail_instances_whose_tasks_then_close(scenario, faults, monkeypatch):
    import app as app_module

    registrar = app_module.task_registrar
    chance, lock = random.Random(7), threading.Lock()

    def dies_after_storing(event, context):
        result = registrar(event, context)
        with lock:
            dies = chance.random() < 0.3
        if dies:
            raise RegistrarStopped("stopped after storing the task")
        return result

    scenario.register()
    monkeypatch.setattr(app_module, "task_registrar", dies_after_storing)  # the Lambda runtime resolves it per call
    faults.fail(lambda_=0.3)
    for n in range(N):
        scenario.start(n)
    scenario.wait_until_settled()
    faults.off()
    scenario.converge()
    scenario.finish()
    counts = scenario.check()
    assert faults.injected["lambda.Invoke"] >= 1
    assert counts["instances"] == N and counts["failed"] >= 1 and counts["completed"] >= 1
    assert counts["failed"] + counts["completed"] == N
    closed = [t for r in scenario.all_instances() if r["status"] == "failed" for t in scenario.tasks.for_instance(r["id"])]
    assert closed and all(t["status"] == "expired" and t["closed_reason"] == "the instance failed (RegistrarStopped)"
                          for t in closed)
