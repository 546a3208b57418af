"""Lifecycle events reach EventBridge from the event log's stream (the outbox): what the log holds is
published with the documented detail, at least once, after the write that logged it; nothing else is."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.aws.clients import client
from stepflow_local.streams import StreamPump, stream_handlers, take_records
from tests.waiting import wait_for_task

REVIEW = {"name": "lifecycle_flow", "steps": [
    {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"ready": True}}},
    {"id": "review", "type": "human", "depends_on": ["prepare"], "assignee": "ann",
     "form_schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}}},
]}
LATE_REPLY = {"name": "lifecycle_late", "steps": [{"id": "reply", "type": "webhook", "timeout_seconds": 1}]}
SECRETS = ("token", "snapshot", "callback_key", "callback_nonce", "outbox_state", "completed_seq")


@pytest.fixture
def bus(local_aws):
    """Every event the app publishes on its bus, read from an SQS queue a rule sends them to."""
    sqs, events = local_aws.client("sqs"), local_aws.client("events")
    queue = sqs.create_queue(QueueName=f"lifecycle-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="stepflow-lifecycle", EventPattern=json.dumps({"source": ["stepflow"]}))
    events.put_targets(Rule="stepflow-lifecycle", Targets=[{"Id": "queue", "Arn": arn}])

    def received() -> list[tuple[str, dict[str, Any]]]:
        found = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                body = json.loads(message["Body"])
                found.append((body["detail-type"], body["detail"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    return received


@pytest.fixture
def pump(api, local_aws):
    import app as app_module

    return StreamPump(local_aws, stream_handlers(app_module.app, local_aws))


def _start(api, definition):
    assert api.post("/definitions", definition)[0] in (200, 201)
    status, body = api.post("/instances", {"definition_name": definition["name"], "input_data": {}})
    assert status == 201, body
    return body["id"]


def test_starts_completions_and_ends_are_published_from_the_log_once(api, bus, pump, local_aws):
    instance_id = _start(api, REVIEW)
    task = wait_for_task(api, instance_id, "review")
    assert api.post(f"/tasks/{task['id']}/complete", {"output_data": {"approved": True}, "completed_by": "ann"})[0] == 200
    assert api.wait(instance_id)["status"] == "completed"
    assert bus() == []  # the requests wrote the log; none of them called EventBridge
    assert pump.poll() > 0
    published = bus()
    assert sorted(kind for kind, _ in published) == ["instance.ended", "instance.started", "task.completed"]
    details = dict(published)
    assert details["instance.started"] == {"id": instance_id, "workflow": "lifecycle_flow", "run": "start"}
    assert details["instance.ended"] == {"id": instance_id, "workflow": "lifecycle_flow", "status": "completed"}
    completed = details["task.completed"]["task"]
    assert (completed["id"], completed["instance_id"], completed["status"]) == (task["id"], instance_id, "completed")
    assert completed["output_data"] == {"approved": True} and completed["completed_by"] == "ann"
    assert not set(SECRETS) & set(completed)
    # Each record is delivered once, and the emulated stream keeps nothing it has handed over.
    assert pump.poll() == 0 and bus() == []
    assert take_records(local_aws, "events") == []


def test_a_publish_that_fails_is_delivered_again_by_the_stream(api, bus, pump, local_aws):
    instance_id = _start(api, REVIEW)
    wait_for_task(api, instance_id, "review")
    events = client("events", local_aws.region).meta.events
    refusals: list[str] = []

    def refuse(**_: Any) -> None:
        refusals.append("PutEvents")
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "unavailable"}}, "PutEvents")

    events.register("before-call.eventbridge.PutEvents", refuse)
    try:
        with pytest.raises(ClientError):
            pump.poll()
    finally:
        events.unregister("before-call.eventbridge.PutEvents", refuse)
    assert refusals and bus() == []
    assert pump.poll() > 0
    assert [kind for kind, _ in bus()] == ["instance.started"]


def test_a_completion_the_workflow_no_longer_waits_for_is_published_as_expired(api, bus, pump, local_aws):
    instance_id = _start(api, LATE_REPLY)
    task = wait_for_task(api, instance_id, "reply")
    url = api.get(f"/tasks/{task['id']}/callback")[1]["callback_url"]
    execution = api.get(f"/instances/{instance_id}")[1]["runs"][0]["execution_arn"]
    local_aws.wait_for_execution(execution)  # the step timed out; the index has not caught up yet
    refused = api.client.http.post(url, body="{}", headers={"content-type": "application/json"})
    assert refused.status_code == 410, refused.body
    assert api.wait(instance_id)["status"] == "failed"
    pump.poll()
    published = bus()
    # The completion was logged, then replaced by task.expired in the log: it is never announced.
    assert sorted(kind for kind, _ in published) == ["instance.ended", "instance.started", "task.expired"]
    expired = dict(published)["task.expired"]["task"]
    assert expired["id"] == task["id"] and expired["status"] == "expired"


def test_the_pump_trims_a_stream_no_handler_reads(api, local_aws):
    from moto.dynamodb.models import dynamodb_backends

    instance_id = _start(api, REVIEW)
    wait_for_task(api, instance_id, "review")
    table = dynamodb_backends[local_aws.account_id][local_aws.region].tables[local_aws.table_names["events"]]
    assert table.stream_shard.items  # the start, the step's events, the task's creation
    assert StreamPump(local_aws, {}).poll() == 0
    assert table.stream_shard.items == []
