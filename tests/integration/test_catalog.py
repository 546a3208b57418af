"""The task catalog through the API and the local runtime: categories and filters, examples that register, and
each type run in a workflow (the AWS ones against the emulator)."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from stepflow_local.runtime import _DUMMY_ZIP
from tests.auth_on import authentication
from tests.integration.test_events_api import read_all

ACCOUNT = "123456789012"


def run(api, steps: list[dict[str, Any]], input_data: dict[str, Any] | None = None,
        name: str | None = None) -> dict[str, Any]:
    """Registers a workflow of these steps (each after the one before), runs it to its end, returns the instance."""
    name = name or f"cat_{uuid.uuid4().hex[:8]}"
    chained = []
    for index, step in enumerate(steps):
        chained.append({"type": "machine", **step, **({"depends_on": [steps[index - 1]["id"]]} if index else {})})
    status, body = api.post("/definitions", {"name": name, "steps": chained})
    assert status in (200, 201), body
    status, started = api.post("/instances", {"definition_name": name, "input_data": input_data or {}})
    assert status == 201, started
    return api.wait(started["id"], timeout=60)


def outputs(api, instance: dict[str, Any]) -> dict[str, Any]:
    status, body = api.get(f"/instances/{instance['id']}")
    assert status == 200, body
    return {entry["step_name"]: entry.get("output") for entry in body["step_history"]}


def issues_of(api, steps: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    status, body = api.post("/definitions/validate", {"name": "check", "steps": steps})
    assert status == 200, body
    return [(i["code"], i["location"], i["message"]) for i in body["issues"]]


# ------------------------------------------------------------------------------------------ the catalog


def test_categories_count_every_type_and_the_filter_returns_exactly_one_category(api):
    status, everything = api.get("/plugins")
    assert status == 200
    status, categories = api.get("/plugins/categories")
    assert status == 200, categories
    assert {c["name"] for c in categories} >= {"aws", "data", "notify", "utility", "workflow"}
    assert sum(c["count"] for c in categories) == len(everything)
    for category in categories:
        status, only = api.get(f"/plugins?category={category['name']}")
        assert status == 200
        assert len(only) == category["count"] and {p["category"] for p in only} == {category["name"]}
    aws_ids = {p["id"] for p in api.get("/plugins?category=aws")[1]}
    assert aws_ids == {"aws.s3.get", "aws.s3.put", "aws.sqs.send", "aws.eventbridge.put", "aws.lambda.invoke"}


def test_an_unknown_category_or_parameter_is_a_400_never_the_whole_catalog(api):
    status, body = api.get("/plugins?category=nope")
    assert status == 400
    text = json.dumps(body)
    assert "nope" in text and "aws" in text and "notify" in text  # the known ones are listed
    status, body = api.get("/plugins?categry=aws")
    assert status == 400 and "category" in json.dumps(body)
    status, body = api.get("/plugins?category=" + "x" * 5000)
    assert status == 400 and len(json.dumps(body)) < 1000  # not echoed whole


BUILTIN = ("util.log", "util.sleep", "data.set", "data.assert", "http.request", "json.transform", "json.validate",
           "notify.email", "notify.slack", "notify.sns", "aws.s3.get", "aws.s3.put", "aws.sqs.send",
           "aws.eventbridge.put", "aws.lambda.invoke", "workflow.start")


@pytest.mark.parametrize("task_type", BUILTIN)
def test_every_type_has_schemas_a_category_and_examples_that_register(api, task_type):
    status, manifest = api.get(f"/plugins/{task_type}")
    assert status == 200, manifest
    assert manifest["category"] and manifest["category"] != "custom"
    assert manifest["configSchema"]["type"] == "object" and manifest["outputSchema"]["type"] == "object"
    assert manifest["examples"], task_type
    steps = [{"id": f"ex{i}", "type": "machine", "task_type": task_type, "config": example["config"]}
             for i, example in enumerate(manifest["examples"])]
    assert issues_of(api, steps) == []


# ------------------------------------------------------------------------------------------ json.*


def test_json_transform_applies_jmespath_to_the_step_input(api):
    instance = run(api, [{"id": "pick", "task_type": "json.transform",
                          "config": {"expression": "{paid: orders[?paid].id, total: sum(orders[].total)}"}}],
                   {"orders": [{"id": "o-1", "paid": True, "total": 10}, {"id": "o-2", "paid": False, "total": 5}]})
    assert instance["status"] == "completed", instance
    assert outputs(api, instance)["pick"] == {"result": {"paid": ["o-1"], "total": 15}}


def test_json_transform_refuses_a_broken_or_oversized_expression_at_registration(api):
    found = issues_of(api, [{"id": "t", "type": "machine", "task_type": "json.transform",
                             "config": {"expression": "orders[?paid"}}])
    assert [(code, location) for code, location, _ in found] == [("invalid_config", "steps[0].config.expression")]
    found = issues_of(api, [{"id": "t", "type": "machine", "task_type": "json.transform",
                             "config": {"expression": "(" * 600 + "a" + ")" * 600}}])
    assert [(code, location) for code, location, _ in found] == [("invalid_config", "steps[0].config.expression")]
    assert all("Traceback" not in message and "/" not in message.split(":")[0] for _, _, message in found)


def test_json_transform_fails_a_type_error_with_a_named_error(api):
    instance = run(api, [{"id": "t", "task_type": "json.transform", "config": {"expression": "sum(name)"}}],
                   {"name": "not numbers"})
    assert instance["status"] == "failed"
    assert instance["error"]["error"] == "Json.TransformFailed", instance["error"]


def test_json_transform_bounds_its_result(api):
    # Four copies of a 70 KB input are past what a step output may hold: a named failure, nothing stored.
    instance = run(api, [{"id": "t", "task_type": "json.transform", "config": {"expression": "[@, @, @, @]"}}],
                   {"text": "x" * 70_000})
    assert instance["status"] == "failed" and instance["error"]["error"] == "Json.ResultTooLarge", instance["error"]


def test_json_validate_reports_or_fails_and_refuses_a_backtracking_pattern(api):
    schema = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string", "pattern": "^o-[0-9]+$"}}}
    instance = run(api, [{"id": "check", "task_type": "json.validate",
                          "config": {"schema": schema, "data": {"id": "x"}, "fail": False}}])
    assert instance["status"] == "completed", instance
    result = outputs(api, instance)["check"]
    assert result["valid"] is False and [e["location"] for e in result["errors"]] == ["data.id"]
    instance = run(api, [{"id": "check", "task_type": "json.validate", "config": {"schema": schema}}], {"id": "o-7"})
    assert instance["status"] == "completed" and outputs(api, instance)["check"] == {"valid": True, "errors": []}
    instance = run(api, [{"id": "check", "task_type": "json.validate", "config": {"schema": schema}}], {})
    assert instance["status"] == "failed" and instance["error"]["error"] == "Json.ValidationFailed"
    hostile = {"type": "string", "pattern": "^(a|a)*\\1$"}
    found = issues_of(api, [{"id": "v", "type": "machine", "task_type": "json.validate", "config": {"schema": hostile}}])
    assert [(code, location) for code, location, _ in found] == [("invalid_config", "steps[0].config.schema.pattern")]


def test_json_validate_bounds_the_work_of_a_huge_value(api):
    # RE2 keeps each pattern linear (no backtracking on "(a+)+$"); the operation budget bounds the whole check.
    alternatives = [{"pattern": "^(a+)+$"}] + [{"pattern": f"^{c}"} for c in "bcdefghijklmnopqrstuvwxyz"]
    schema = {"type": "array", "items": {"anyOf": alternatives}}
    instance = run(api, [{"id": "check", "task_type": "json.validate",
                          "config": {"schema": schema, "data": "{{ items }}", "fail": False}}],
                   {"items": ["z" * 20] * 3_000})  # valid, and only the last alternative matches
    assert instance["status"] == "completed", instance
    result = outputs(api, instance)["check"]
    assert result["valid"] is False and len(result["errors"]) == 1
    assert "checks against the schema" in result["errors"][0]["message"]


# ------------------------------------------------------------------------------------------ util.log


def test_util_log_writes_into_the_instance_event_log(api):
    instance = run(api, [{"id": "note", "task_type": "util.log",
                          "config": {"message": "approved by {{ who }}", "level": "warning"}}], {"who": "ann"})
    assert instance["status"] == "completed"
    logged = [e for e in read_all(api, instance["id"]) if e["type"] == "log"]
    assert len(logged) == 1 and logged[0]["step"] == "note"
    assert logged[0]["data"] == {"message": "approved by ann", "level": "warning"}


# ------------------------------------------------------------------------------------------ AWS types


@pytest.fixture
def aws(local_aws) -> Any:
    return local_aws


def test_s3_put_then_get_through_the_emulator(api, aws):
    bucket = f"acme-{uuid.uuid4().hex[:8]}"
    aws.client("s3").create_bucket(Bucket=bucket)
    instance = run(api, [
        {"id": "put", "task_type": "aws.s3.put",
         "config": {"bucket": bucket, "key": "orders/{{ order }}.json", "body": {"order": "{{ order }}", "n": 2}}},
        {"id": "get", "task_type": "aws.s3.get", "config": {"bucket": bucket, "key": "orders/{{ order }}.json"}},
        {"id": "text", "task_type": "aws.s3.put",
         "config": {"bucket": bucket, "key": "note.txt", "body": "hello {{ order }}"}},
    ], {"order": "o-9"})
    assert instance["status"] == "completed", instance
    steps = outputs(api, instance)
    assert steps["get"]["body"] == {"order": "o-9", "n": 2} and steps["get"]["content_type"] == "application/json"
    assert steps["put"]["key"] == "orders/o-9.json"
    stored = aws.client("s3").get_object(Bucket=bucket, Key="note.txt")
    assert stored["Body"].read() == b"hello o-9" and stored["ContentType"].startswith("text/plain")


def test_s3_errors_are_named_and_echo_no_internals(api, aws):
    bucket = f"acme-{uuid.uuid4().hex[:8]}"
    aws.client("s3").create_bucket(Bucket=bucket)
    aws.client("s3").put_object(Bucket=bucket, Key="big", Body=b"x" * 2000)
    missing = run(api, [{"id": "get", "task_type": "aws.s3.get", "config": {"bucket": bucket, "key": "nope"}}])
    assert missing["status"] == "failed" and missing["error"]["error"] == "Aws.NotFound", missing["error"]
    big = run(api, [{"id": "get", "task_type": "aws.s3.get",
                     "config": {"bucket": bucket, "key": "big", "max_bytes": 1000}}])
    assert big["status"] == "failed" and big["error"]["error"] == "Aws.ObjectTooLarge"
    for instance in (missing, big):
        text = json.dumps(instance["error"])
        assert "Traceback" not in text and "botocore" not in text and aws.account_id not in text


def test_sqs_send_delivers_to_a_standard_and_a_fifo_queue(api, aws):
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"jobs-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    instance = run(api, [{"id": "send", "task_type": "aws.sqs.send",
                          "config": {"queue_url": url, "body": {"order": "{{ order }}"}}}], {"order": "o-3"})
    assert instance["status"] == "completed", instance
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in received] == [{"order": "o-3"}]
    assert outputs(api, instance)["send"]["message_id"] == received[0]["MessageId"]
    # FIFO: the deduplication id is the step's run and id unless given, so a retried step sends once.
    fifo = sqs.create_queue(QueueName=f"jobs-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    instance = run(api, [{"id": "send", "task_type": "aws.sqs.send",
                          "config": {"queue_url": fifo, "body": "o-3", "group_id": "orders"}}])
    assert instance["status"] == "completed", instance
    received = sqs.receive_message(QueueUrl=fifo, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in received] == ["o-3"]
    assert received[0]["Attributes"]["MessageGroupId"] == "orders"
    assert instance["id"] in received[0]["Attributes"]["MessageDeduplicationId"] or \
        len(received[0]["Attributes"]["MessageDeduplicationId"]) == 64


def test_sns_publish_reaches_a_subscribed_queue(api, aws):
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name=f"on-call-{uuid.uuid4().hex[:8]}")["TopicArn"]
    url = sqs.create_queue(QueueName=f"inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    instance = run(api, [{"id": "page", "task_type": "notify.sns",
                          "config": {"topic_arn": topic, "subject": "stuck", "message": {"order": "{{ order }}"}}}],
                   {"order": "o-4"})
    assert instance["status"] == "completed", instance
    received = sqs.receive_message(QueueUrl=url)["Messages"]
    assert [json.loads(m["Body"]) for m in received] == [{"order": "o-4"}]


def test_sns_to_a_missing_topic_is_aws_not_found(api, aws):
    instance = run(api, [{"id": "page", "task_type": "notify.sns",
                          "config": {"topic_arn": f"arn:aws:sns:{aws.region}:{aws.account_id}:none", "message": "x"}}])
    assert instance["status"] == "failed" and instance["error"]["error"] in ("Aws.NotFound", "Aws.Rejected")
    assert aws.account_id not in json.dumps(instance["error"])


def test_email_is_sent_through_ses_from_a_verified_sender_only(api, aws):
    ses = aws.client("ses")
    ses.verify_email_identity(EmailAddress="workflows@acme.example")
    steps = [{"id": "mail", "task_type": "notify.email",
              "config": {"from": "workflows@acme.example", "to": ["{{ email }}"], "subject": "Expense {{ id }}",
                         "text": "approved"}}]
    instance = run(api, steps, {"email": "ann@acme.example", "id": "e-1"})
    assert instance["status"] == "completed", instance
    assert outputs(api, instance)["mail"]["message_id"]
    assert ses.get_send_quota()["SentLast24Hours"] == 1
    steps[0]["config"]["from"] = "someone@else.example"
    refused = run(api, steps, {"email": "ann@acme.example", "id": "e-2"})
    assert refused["status"] == "failed" and refused["error"]["error"] == "Aws.Rejected", refused["error"]
    assert "MessageRejected" in refused["error"]["message"]  # the service's code, not its text
    found = issues_of(api, [{"id": "m", "type": "machine", "task_type": "notify.email",
                             "config": {"from": "a@b.c", "to": ["x@y.z"], "subject": "s"}}])
    assert found and found[0][0] == "invalid_config"  # neither text nor html


def test_eventbridge_put_reaches_a_rule_target(api, aws):
    events, sqs = aws.client("events"), aws.client("sqs")
    url = sqs.create_queue(QueueName=f"shipped-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = f"acme-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus)
    events.put_rule(Name="shipped", EventBusName=bus, EventPattern=json.dumps({"source": ["acme.orders"]}))
    events.put_targets(Rule="shipped", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    instance = run(api, [{"id": "announce", "task_type": "aws.eventbridge.put",
                          "config": {"bus": bus, "source": "acme.orders", "detail_type": "OrderShipped",
                                     "detail": {"order": "{{ order }}"}}}], {"order": "o-5"})
    assert instance["status"] == "completed", instance
    received = sqs.receive_message(QueueUrl=url)["Messages"]
    event = json.loads(received[0]["Body"])
    assert event["detail"] == {"order": "o-5"} and event["id"] == outputs(api, instance)["announce"]["event_id"]


def _user_function(aws: Any, handler: str = "stepflow_local.testing_handlers.echo") -> str:
    name = f"acme-scorer-{uuid.uuid4().hex[:8]}"
    aws.client("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=aws.lambda_role_arn,
                                         Handler=handler, Code={"ZipFile": _DUMMY_ZIP})
    return name


def test_lambda_invoke_runs_the_users_function_and_names_its_failure(api, aws):
    name = _user_function(aws)
    instance = run(api, [{"id": "score", "task_type": "aws.lambda.invoke",
                          "config": {"function": name, "payload": {"email": "{{ email }}"}}}], {"email": "a@b.c"})
    assert instance["status"] == "completed", instance
    result = outputs(api, instance)["score"]
    assert result["status_code"] == 200 and result["result"]["event"] == {"email": "a@b.c"}
    failing = _user_function(aws, "stepflow_local.testing_handlers.fail")
    instance = run(api, [{"id": "score", "task_type": "aws.lambda.invoke", "config": {"function": failing}}])
    assert instance["status"] == "failed" and instance["error"]["error"] == "Aws.LambdaFunctionError"
    missing = run(api, [{"id": "score", "task_type": "aws.lambda.invoke", "config": {"function": "acme-none"}}])
    assert missing["status"] == "failed" and missing["error"]["error"] == "Aws.NotFound", missing["error"]


def test_lambda_invoke_refuses_the_services_own_functions(api, aws):
    for function in (aws.function_arns["step_runner"], aws.function_names["step_runner"]):
        found = issues_of(api, [{"id": "x", "type": "machine", "task_type": "aws.lambda.invoke",
                                 "config": {"function": function}}])
        assert [(code, location) for code, location, _ in found] == [("invalid_config", "steps[0].config.function")]
    # The stack's prefix followed by "tasks-" names the functions steps may invoke (and the role reaches).
    allowed = aws.function_names["step_runner"].replace("step_runner", "tasks-scorer")
    assert issues_of(api, [{"id": "x", "type": "machine", "task_type": "aws.lambda.invoke",
                            "config": {"function": allowed}}]) == []
    # Named by a placeholder, it is judged when the step runs.
    instance = run(api, [{"id": "x", "task_type": "aws.lambda.invoke", "config": {"function": "{{ fn }}"}}],
                   {"fn": aws.function_names["step_runner"]})
    assert instance["status"] == "failed" and instance["error"]["error"] == "Stepflow.InvalidConfig"


# ------------------------------------------------------------------------------------------ notify.slack


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - http.server's spelling
        length = int(self.headers.get("Content-Length") or 0)
        type(self).received.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def slack() -> Iterator[type[_Hook]]:
    handler = type("Hook", (_Hook,), {"received": [], "status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/s3cr3tpath"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def test_slack_posts_to_the_webhook_and_a_refusal_names_no_url(api, slack):
    steps = [{"id": "say", "task_type": "notify.slack",
              "config": {"webhook_url": slack.url, "text": "approved by {{ who }}"}}]  # type: ignore[attr-defined]
    instance = run(api, steps, {"who": "ann"})
    assert instance["status"] == "completed", instance
    assert slack.received == [{"path": "/services/T000/B000/s3cr3tpath", "body": {"text": "approved by ann"}}]
    slack.status = 500
    instance = run(api, steps, {"who": "bob"})
    assert instance["status"] == "failed" and instance["error"]["error"] == "Slack.StatusError"
    assert "s3cr3tpath" not in json.dumps(instance["error"])


def test_slack_to_the_metadata_address_is_refused_by_egress(api):
    instance = run(api, [{"id": "say", "task_type": "notify.slack",
                          "config": {"webhook_url": "http://169.254.169.254/latest", "text": "x"}}])
    assert instance["status"] == "failed" and instance["error"]["error"] == "HttpEgressDenied"


# ------------------------------------------------------------------------------------------ workflow.start


def test_workflow_start_starts_a_child_linked_to_its_parent(api):
    status, body = api.post("/definitions", {"name": "child_flow", "input_schema": {
        "type": "object", "required": ["order"], "properties": {"order": {"type": "string"}}},
        "steps": [{"id": "done", "type": "machine", "task_type": "data.set", "config": {"values": {"ok": True}}}]})
    assert status == 201, body
    parent = run(api, [{"id": "spawn", "task_type": "workflow.start",
                        "config": {"workflow": "child_flow", "input": {"order": "{{ order }}"}}}], {"order": "o-8"})
    assert parent["status"] == "completed", parent
    spawned = outputs(api, parent)["spawn"]
    assert spawned["workflow"] == "child_flow"
    child = api.wait(spawned["instance_id"])
    assert child["status"] == "completed" and child["input_data"] == {"order": "o-8"}
    assert child["origin_instance"] == parent["id"]
    status, page = api.get(f"/instances?origin_instance={parent['id']}")
    assert status == 200 and [i["id"] for i in page["items"]] == [spawned["instance_id"]]


def test_workflow_start_errors_are_named(api):
    api.post("/definitions", {"name": "strict_child", "input_schema": {"type": "object", "required": ["order"]},
                              "steps": [{"id": "s", "type": "machine", "task_type": "util.log",
                                         "config": {"message": "x"}}]})
    missing = run(api, [{"id": "spawn", "task_type": "workflow.start", "config": {"workflow": "no_such_flow"}}])
    assert missing["status"] == "failed" and missing["error"]["error"] == "Workflow.NotFound"
    bad = run(api, [{"id": "spawn", "task_type": "workflow.start", "config": {"workflow": "strict_child"}}])
    assert bad["status"] == "failed" and bad["error"]["error"] == "Workflow.InvalidInput"


@pytest.fixture
def secured(api) -> Iterator[Any]:
    from tests.integration.test_auth import SECRET, Caller

    with authentication(SECRET):
        yield Caller(api)


def test_workflow_start_keeps_to_the_parents_tenant(secured):
    from tests.integration.test_auth import FOREIGN, OWN, token, wait_status

    call = secured

    def register(name: str, steps: list[dict[str, Any]], tenant: str) -> None:
        status, body = call("POST", "/definitions", {"name": name, "steps": steps}, bearer=token("editor", tenant))
        assert status == 201, body

    noop = [{"id": "s", "type": "machine", "task_type": "data.set", "config": {"values": {"ok": True}}}]
    register("own_child", noop, OWN)
    register("their_child", noop, FOREIGN)
    for name, child in (("spawns_own", "own_child"), ("spawns_theirs", "their_child")):
        register(name, [{"id": "spawn", "type": "machine", "task_type": "workflow.start",
                         "config": {"workflow": child}}], OWN)
    runner = token("executor", OWN, user="ann")
    status, started = call("POST", "/instances", {"definition_name": "spawns_own"}, bearer=runner)
    assert status == 201, started
    parent = wait_status(call, started["id"], ("completed", "failed"), runner)
    assert parent["status"] == "completed", parent
    child_id = parent["step_history"][0]["output"]["instance_id"]
    child = wait_status(call, child_id, ("completed", "failed"), runner)  # readable by the parent's tenant
    assert child["tenant_id"] == OWN and child["created_by"] == "ann" and child["origin_instance"] == parent["id"]
    assert call("GET", f"/instances/{child_id}", bearer=token("viewer", FOREIGN))[0] == 404
    # Another tenant's workflow is not found, exactly as the API says it, and nothing starts.
    status, started = call("POST", "/instances", {"definition_name": "spawns_theirs"}, bearer=runner)
    failed = wait_status(call, started["id"], ("completed", "failed"), runner)
    assert failed["status"] == "failed" and failed["error"]["error"] == "Workflow.NotFound"
    status, page = call("GET", "/instances?workflow_name=their_child", bearer=token("viewer", FOREIGN))
    assert status == 200 and page["items"] == []


def test_a_workflow_that_starts_itself_stops_at_the_depth_limit(api):
    import time

    from chalicelib.service.child_workflows import MAX_DEPTH

    status, body = api.post("/definitions", {"name": "again", "steps": [
        {"id": "spawn", "type": "machine", "task_type": "workflow.start", "config": {"workflow": "again"}}]})
    assert status == 201, body
    status, first = api.post("/instances", {"definition_name": "again"})
    assert status == 201, first
    deadline = time.monotonic() + 90
    while True:  # each one starts the next; the one past the limit fails instead
        items = api.get("/instances?workflow_name=again&limit=50")[1]["items"]
        ended = [i for i in items if i["status"] in ("completed", "failed")]
        if len(ended) == MAX_DEPTH + 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    views = [api.get(f"/instances/{i['id']}")[1] for i in items]
    assert sorted(v["status"] for v in views) == ["completed"] * MAX_DEPTH + ["failed"], [v["status"] for v in views]
    assert [v["error"]["error"] for v in views if v["status"] == "failed"] == ["Workflow.TooDeep"]
