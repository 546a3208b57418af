"""A StopExecution that arrives before the execution's thread has made its environment (a cancel right
after a start, a shutdown) stops it once it has one: ABORTED, never an AttributeError from the emulator."""

from __future__ import annotations

import json
import threading
import uuid

from tests.integration.test_moto_execution_index import machine

WAITING = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}


def test_a_stop_before_the_execution_has_its_environment_waits_for_it_and_aborts(local_aws, monkeypatch):
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    sfn = local_aws.client("stepfunctions")
    gate, entered = threading.Event(), threading.Event()
    original = ExecutionWorker._execution_logic

    def held(self):  # the execution's thread, held before it makes its environment
        entered.set()
        assert gate.wait(30)
        return original(self)

    monkeypatch.setattr(ExecutionWorker, "_execution_logic", held)
    arn = sfn.start_execution(stateMachineArn=machine(local_aws, WAITING), name=uuid.uuid4().hex,
                              input=json.dumps({}))["executionArn"]
    assert entered.wait(30)
    outcome: dict = {}

    def stop():
        try:
            sfn.stop_execution(executionArn=arn, error="Stepflow.Canceled", cause="right after the start")
            outcome["stopped"] = True
        except Exception as exc:  # noqa: BLE001 - the test reports what the emulator raised
            outcome["error"] = repr(exc)

    stopper = threading.Thread(target=stop)
    stopper.start()
    gate.set()  # the stop is in flight (or done waiting) while the environment is made
    stopper.join(30)
    assert outcome == {"stopped": True}
    assert local_aws.wait_for_execution(arn)["status"] == "ABORTED"
