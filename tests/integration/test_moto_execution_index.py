"""moto's Step Functions found by dict (stepflow_local/moto_execution_index.py): the same answers and errors
as moto's walks, through the boto3 client the runtime uses, and no walk of the executions kept."""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stepflow_local import moto_execution_index as index
from stepflow_local import moto_patches

SEED = 20261130
PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


def waiting_definition(queue_url: str, heartbeat: bool = False) -> dict[str, Any]:
    """One callback task: its token is sent to the queue, and the execution waits for it."""
    task: dict[str, Any] = {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "End": True,
        "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token", "input.$": "$"}}}
    if heartbeat:
        task["HeartbeatSeconds"] = 3600
    return {"StartAt": "Wait", "States": {"Wait": task}}


@pytest.fixture
def sfn(local_aws):
    return local_aws.client("stepfunctions")


@pytest.fixture
def queue(local_aws):
    return local_aws.client("sqs").create_queue(QueueName=f"tokens-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def backend(local_aws) -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return stepfunctions_parser_backends[local_aws.account_id][local_aws.region]


def machine(local_aws, definition: dict[str, Any], name: str | None = None) -> str:
    return local_aws.client("stepfunctions").create_state_machine(
        name=name or f"{local_aws.prefix}ix-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition),
        roleArn=local_aws.state_machine_role_arn)["stateMachineArn"]


def error_of(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def tokens(local_aws, queue_url: str, count: int, timeout: float = 15.0) -> dict[str, str]:
    """input["n"] -> token of the `count` callback tasks that sent one to the queue (polled with a deadline)."""
    sqs = local_aws.client("sqs")
    found: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while len(found) < count:
        assert time.monotonic() < deadline, f"only {len(found)} of {count} callback tasks started"
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=0).get("Messages", []):
            body = json.loads(message["Body"])
            found[str(body["input"]["n"])] = body["token"]
        if len(found) < count:
            time.sleep(0.05)
    return found


def finished(local_aws, arns: list[str], timeout: float = 60.0) -> None:
    for arn in arns:
        assert local_aws.wait_for_execution(arn, timeout=timeout)["status"] != "RUNNING"


@contextlib.contextmanager
def walks_counted() -> Iterator[list[int]]:
    """counts[0]: how many items iterations of the indexed lists (a backend's machines, a machine's
    executions) yielded on this thread within the block. moto's walks iterate those lists (a `for`, a
    `next(...)` over a generator, `sorted`, `filter`), so a walk of N executions counts N."""
    counts = [0]
    me = threading.current_thread()

    def counting(self: list[Any]) -> Iterator[Any]:
        for item in list.__iter__(self):
            if threading.current_thread() is me:
                counts[0] += 1
            yield item

    index._Indexed.__iter__ = counting  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        del index._Indexed.__iter__


# ------------------------------------------------------------------------------------------- contract


def test_the_indexes_are_installed_by_the_runtime_and_replace_moto_s_walks(local_aws, sfn):
    from moto.stepfunctions.models import StepFunctionBackend

    assert "execution_index" in moto_patches.applied() and index.patched()
    moto_patches.apply()  # idempotent: nothing is wrapped twice
    assert index.ORIGINALS["StepFunctionBackend.describe_execution"] is not StepFunctionBackend.describe_execution
    assert not getattr(index.ORIGINALS["StepFunctionBackend.describe_execution"], "__stepflow_indexed__", False)
    machine(local_aws, PASS)
    assert type(backend(local_aws).state_machines) is index._Machines  # the list moto appends to is indexed
    assert all(type(m.executions) is index._Executions for m in backend(local_aws).state_machines)


def test_a_patch_refuses_a_moto_whose_shape_changed():
    def check(function, expected, what):
        raise RuntimeError(f"moto changed {what}")

    from moto.stepfunctions.models import StepFunctionBackend

    saved = StepFunctionBackend.__dict__["describe_execution"]
    setattr(StepFunctionBackend, "describe_execution", index.ORIGINALS["StepFunctionBackend.describe_execution"])  # noqa: B010
    try:
        with pytest.raises(RuntimeError, match="moto changed"):
            index.patch(check)
    finally:
        setattr(StepFunctionBackend, "describe_execution", saved)  # noqa: B010
    assert index.patched()


# ------------------------------------------------------------------------------------------ semantics


def test_start_is_idempotent_for_the_same_name_and_input_while_running_and_refuses_otherwise(local_aws, sfn, queue):
    waiting = machine(local_aws, waiting_definition(queue))
    first = sfn.start_execution(stateMachineArn=waiting, name="order-1", input='{"n": 1}')
    again = sfn.start_execution(stateMachineArn=waiting, name="order-1", input='{"n": 1}')
    assert again["executionArn"] == first["executionArn"] and again["startDate"] == first["startDate"]
    assert error_of(lambda: sfn.start_execution(stateMachineArn=waiting, name="order-1", input='{"n": 2}')) == (
        "ExecutionAlreadyExists", f"Execution Already Exists: '{first['executionArn']}'")

    done = machine(local_aws, PASS)
    ended = sfn.start_execution(stateMachineArn=done, name="order-1", input='{"n": 1}')["executionArn"]
    assert ended != first["executionArn"]  # a name is unique per state machine, not per account
    finished(local_aws, [ended])
    assert error_of(lambda: sfn.start_execution(stateMachineArn=done, name="order-1", input='{"n": 1}')) == (
        "ExecutionAlreadyExists", f"Execution Already Exists: '{ended}'")
    assert [e["executionArn"] for e in sfn.list_executions(stateMachineArn=waiting)["executions"]] == [
        first["executionArn"]]
    sfn.stop_execution(executionArn=first["executionArn"])


def test_missing_executions_and_malformed_arns_get_moto_s_errors(local_aws, sfn):
    done = machine(local_aws, PASS)
    arn = sfn.start_execution(stateMachineArn=done, name="there", input="{}")["executionArn"]
    finished(local_aws, [arn])
    missing_name = arn[: -len("there")] + "not-there"
    missing_machine = arn.replace(":execution:", ":execution:no-such-machine-")
    malformed = "arn:aws:states:us-east-1:123:execution:x:y"  # an account id of the wrong length
    for call in (sfn.describe_execution, sfn.get_execution_history, sfn.stop_execution):
        for missing in (missing_name, missing_machine):
            assert error_of(lambda c=call, m=missing: c(executionArn=m)) == (
                "ExecutionDoesNotExist", f"Execution Does Not Exist: '{missing}'")
        assert error_of(lambda c=call: c(executionArn=malformed)) == (
            "InvalidArn", f"Execution Does Not Exist: '{malformed}'")
    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
    assert sfn.describe_state_machine_for_execution(executionArn=arn)["stateMachineArn"] == done
    assert error_of(lambda: sfn.describe_state_machine_for_execution(executionArn=missing_name))[0] == (
        "ResourceNotFound")


def test_stop_and_history_of_a_waiting_execution(local_aws, sfn, queue):
    waiting = machine(local_aws, waiting_definition(queue))
    arn = sfn.start_execution(stateMachineArn=waiting, name="stop-me", input='{"n": 1}')["executionArn"]
    tokens(local_aws, queue, 1)
    # TaskSubmitted is recorded once the SendMessage that carried the token has returned (as on AWS), so
    # a token already in the queue does not mean the history shows it yet.
    types = history_until(sfn, arn, "TaskSubmitted", "the waiting task never recorded its submission")
    assert types[0] == "ExecutionStarted"
    sfn.stop_execution(executionArn=arn)
    assert local_aws.wait_for_execution(arn, timeout=10)["status"] == "ABORTED"
    history_until(sfn, arn, "ExecutionAborted", "the stopped execution never recorded its end")


def history_until(sfn, arn: str, event_type: str, message: str, timeout: float = 10.0) -> list[str]:
    """The execution's history event types, read (with a deadline) until one of them is `event_type`."""
    deadline = time.monotonic() + timeout
    while event_type not in (types := [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]):
        assert time.monotonic() < deadline, message
        time.sleep(0.05)
    return types


def test_send_task_success_failure_and_heartbeat_reach_the_waiting_task(local_aws, sfn, queue):
    waiting = machine(local_aws, waiting_definition(queue, heartbeat=True))
    plain = machine(local_aws, waiting_definition(queue))
    arns = {n: sfn.start_execution(stateMachineArn=waiting if n != "3" else plain, name=f"cb-{n}",
                                   input=json.dumps({"n": int(n)}))["executionArn"] for n in ("1", "2", "3")}
    token = tokens(local_aws, queue, 3)

    sfn.send_task_heartbeat(taskToken=token["1"])
    # Without HeartbeatSeconds moto has no heartbeat to take: the token is refused, as moto refuses it.
    assert error_of(lambda: sfn.send_task_heartbeat(taskToken=token["3"]))[0] == "InvalidToken"
    sfn.send_task_success(taskToken=token["1"], output='{"ok": true}')
    first = local_aws.wait_for_execution(arns["1"], timeout=10)
    assert first["status"] == "SUCCEEDED" and json.loads(first["output"]) == {"ok": True}
    sfn.send_task_failure(taskToken=token["2"], error="Rejected", cause="no")
    second = local_aws.wait_for_execution(arns["2"], timeout=10)
    assert (second["status"], second["error"]) == ("FAILED", "Rejected")  # moto's response drops the cause

    # The ended execution no longer takes its token; an unknown token is refused the same way.
    assert error_of(lambda: sfn.send_task_success(taskToken=token["1"], output="{}"))[0] == "InvalidToken"
    assert error_of(lambda: sfn.send_task_heartbeat(taskToken=token["1"]))[0] == "InvalidToken"
    assert error_of(lambda: sfn.send_task_success(taskToken="no-such-token", output="{}"))[0] == "InvalidToken"
    assert error_of(lambda: sfn.send_task_failure(taskToken="no-such-token"))[0] == "InvalidToken"
    sfn.stop_execution(executionArn=arns["3"])


def test_a_deleted_state_machine_takes_its_executions_and_a_new_one_of_its_name_starts_empty(local_aws, sfn):
    name = f"{local_aws.prefix}ix-gone-{uuid.uuid4().hex[:6]}"
    arn = machine(local_aws, PASS, name)
    execution = sfn.start_execution(stateMachineArn=arn, name="only", input="{}")["executionArn"]
    finished(local_aws, [execution])
    sfn.delete_state_machine(stateMachineArn=arn)
    assert error_of(lambda: sfn.describe_execution(executionArn=execution))[0] == "ExecutionDoesNotExist"
    assert error_of(lambda: sfn.describe_state_machine(stateMachineArn=arn))[0] == "StateMachineDoesNotExist"
    assert machine(local_aws, PASS, name) == arn
    again = sfn.start_execution(stateMachineArn=arn, name="only", input='{"other": 1}')["executionArn"]
    assert again == execution and local_aws.wait_for_execution(again, timeout=10)["status"] == "SUCCEEDED"


def test_lookups_answer_as_moto_s_own_walks_over_random_names(local_aws, sfn, queue):
    """Every lookup, for names that exist, do not, and sit on another machine, against moto's original
    function on the same backend: the same result object or the same error and message."""
    rng = random.Random(SEED)
    machines = [machine(local_aws, PASS), machine(local_aws, waiting_definition(queue))]
    started = []
    for n in range(40):
        target = machines[rng.randrange(2)]
        started.append(sfn.start_execution(stateMachineArn=target, name=f"e{rng.randrange(30)}-{n}",
                                           input=json.dumps({"n": n}))["executionArn"])
    sfn.delete_state_machine(stateMachineArn=machine(local_aws, PASS))  # a removal, too
    state = backend(local_aws)
    candidates = started + [a.replace(f"-{i}", f"-{i + 1}") for i, a in enumerate(started)] + [
        a.replace(":execution:", ":execution:x") for a in started[:5]] + ["arn:aws:states:us-east-1:1:execution:a:b"]

    def outcome(function: Any, *args: Any) -> tuple[str, Any]:
        try:
            return "ok", function(*args)
        except Exception as exc:  # noqa: BLE001 - the comparison is the point: same type, same message
            return type(exc).__name__, str(exc)

    for arn in candidates:
        for name in ("describe_execution", "_get_state_machine_for_execution", "describe_state_machine_for_execution"):
            ours = outcome(getattr(state, name), arn)
            theirs = outcome(index.ORIGINALS[f"StepFunctionBackend.{name}"], state, arn)
            assert ours == theirs, (name, arn)
    for arn in machines + [machines[0] + "x", "arn:aws:states:us-east-1:1:stateMachine:nope", "bad"]:
        assert outcome(state.describe_state_machine, arn) == outcome(
            index.ORIGINALS["StepFunctionBackend.describe_state_machine"], state, arn)
    for arn, (name, payload) in itertools.product(machines, [(f"e{i}-{n}", json.dumps({"n": n}))
                                                             for i in range(30) for n in range(0, 40, 7)]):
        sm = state.describe_state_machine(arn)
        assert outcome(sm._handle_name_input_idempotency, name, payload) == outcome(
            index.ORIGINALS["StateMachine._handle_name_input_idempotency"], sm, name, payload)
    local_aws.stop_running_executions()


def test_concurrent_starts_of_one_name_make_one_execution(local_aws, sfn, queue):
    waiting = machine(local_aws, waiting_definition(queue))
    results: list[Any] = []
    barrier = threading.Barrier(12)

    def start(n: int) -> None:
        barrier.wait(10)
        try:
            results.append(sfn.start_execution(stateMachineArn=waiting, name="racer",
                                               input=json.dumps({"n": n % 2}))["executionArn"])
        except ClientError as exc:
            results.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=start, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    arns = {r for r in results if r.startswith("arn:")}
    assert len(results) == 12 and len(arns) == 1
    # Every start with the winner's input got its execution; every other one was refused.
    assert results.count("ExecutionAlreadyExists") == 6
    assert len(sfn.list_executions(stateMachineArn=waiting)["executions"]) == 1
    local_aws.stop_running_executions()


# ------------------------------------------------------------------------------------------------ work

KEPT = 2000


def test_lookups_walk_no_executions_however_many_are_kept(local_aws, sfn, queue):
    """With KEPT executions stored, describe, history, stop, start (new, repeated, refused) and SendTask*
    iterate none of them; moto's own describe, on the same backend, iterates them all."""
    done = machine(local_aws, PASS)
    state = backend(local_aws)
    kept = [state.start_execution(done, f"kept-{n}", "{}").execution_arn for n in range(KEPT)]  # moto's own path
    finished(local_aws, kept)
    waiting = machine(local_aws, waiting_definition(queue))
    held = [sfn.start_execution(stateMachineArn=waiting, name=f"held-{n}", input=json.dumps({"n": n}))["executionArn"]
            for n in range(3)]
    token = tokens(local_aws, queue, 3)

    with walks_counted() as counts:
        assert sfn.describe_execution(executionArn=kept[KEPT // 2])["status"] == "SUCCEEDED"
        assert sfn.get_execution_history(executionArn=kept[-1])["events"]
        assert error_of(lambda: sfn.describe_execution(executionArn=kept[0] + "-missing"))[0] == (
            "ExecutionDoesNotExist")
        assert error_of(lambda: sfn.start_execution(stateMachineArn=done, name="kept-7", input="{}"))[0] == (
            "ExecutionAlreadyExists")
        sfn.start_execution(stateMachineArn=done, name="one-more", input="{}")
        assert sfn.start_execution(stateMachineArn=waiting, name="held-0", input='{"n": 0}')["executionArn"] == held[0]
        sfn.send_task_success(taskToken=token["0"], output="{}")
        sfn.send_task_failure(taskToken=token["1"], error="E", cause="c")
        assert error_of(lambda: sfn.send_task_success(taskToken="unknown", output="{}"))[0] == "InvalidToken"
        sfn.stop_execution(executionArn=held[2])
    assert counts[0] == 0

    with walks_counted() as counts:  # the counter sees a walk: moto's own lookup, same backend
        index.ORIGINALS["StepFunctionBackend.describe_execution"](state, kept[-1])
    assert counts[0] >= KEPT
    finished(local_aws, held)


# ---------------------------------------------------------------------------------------------- restart


def test_a_restart_on_a_kept_store_indexes_the_recreated_machines_and_continued_executions(api, local_aws):
    from stepflow_local.restart import recover
    from tests.integration.test_continuation import REVIEW, forget_step_functions, register_and_start, services
    from tests.waiting import wait_for_task

    instance_id = register_and_start(api, REVIEW)
    task = wait_for_task(api, instance_id, "review")
    before = services().task_store.get(task["id"])

    forget_step_functions(local_aws)  # moto's backends reset: plain lists again, nothing indexed
    assert not backend(local_aws).state_machines
    report = recover(services())
    assert report.continued == [instance_id]

    state = backend(local_aws)
    assert type(state.state_machines) is index._Machines
    sfn = local_aws.client("stepfunctions")
    deadline = time.monotonic() + 20
    while (after := services().task_store.get(task["id"]))["attempt"] == before["attempt"]:
        assert time.monotonic() < deadline, "the continued run never took the task over"
        time.sleep(0.1)
    assert sfn.describe_execution(executionArn=after["execution_arn"])["status"] == "RUNNING"
    assert error_of(lambda: sfn.describe_execution(executionArn=before["execution_arn"]))[0] == "ExecutionDoesNotExist"
    assert index.token_holders(state, before["token"]) == []  # the lost run's token belongs to no execution
    assert [e.execution_arn for e in index.token_holders(state, after["token"]) or []] == [after["execution_arn"]]

    status, done = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"ok": True}, "completed_by": "rita"})
    assert status == 200, done
    assert api.wait(instance_id)["status"] == "completed"
