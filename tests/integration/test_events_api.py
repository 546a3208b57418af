"""Instance events through the API: the log as NDJSON and SSE read with a cursor, events sent into a
running instance, webhook callbacks by key, and no task token anywhere."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from chalicelib.tasks.errors import StepError
from tests.waiting import wait_for_task

SEQ_LEN = len("20250101T120000.123456Z-9f86d081884c7d65")


@pytest.fixture
def app_services(api):
    """The app's Services, with two test task types on its registry (the Lambda handlers share it)."""
    import app as app_module

    registry = app_module.services.registry
    if "test.emit" not in registry:
        @registry.task("test.emit", description="Emits a custom event and a reserved-looking one.")
        def emit(ctx):
            ctx.emit("order.checked", {"order": ctx.input.get("order"), "ok": True})
            ctx.emit("step.succeeded", {"spoof": True})
            return {"checked": True}

    if "test.flaky" not in registry:
        @registry.task("test.flaky", description="Fails its first attempt.")
        def flaky(ctx):
            if ctx.attempt == 0:
                ctx.emit("flaky.tried", {"attempt": ctx.attempt})
                raise StepError("Test.Flaky", "the first attempt fails")
            return {"flaky_attempts": ctx.attempt + 1}

    return app_module.services


FLOW = {
    "name": "events_flow",
    "steps": [
        {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"order": "A-1"}}},
        {"id": "check", "type": "machine", "task_type": "test.emit", "depends_on": ["prepare"]},
        # A fan-out: four branches write their events at the same time.
        {"id": "fan_a", "type": "machine", "task_type": "data.set", "config": {"values": {"a": 1}},
         "depends_on": ["check"]},
        {"id": "fan_b", "type": "machine", "task_type": "data.set", "config": {"values": {"b": 2}},
         "depends_on": ["check"]},
        {"id": "fan_c", "type": "machine", "task_type": "util.log", "config": {"message": "c"},
         "depends_on": ["check"]},
        {"id": "flaky", "type": "machine", "task_type": "test.flaky", "depends_on": ["check"],
         "retry": {"max_attempts": 2, "interval_seconds": 1}},
        {"id": "payment", "type": "webhook", "event_type": "payment.received",
         "depends_on": ["fan_a", "fan_b", "fan_c", "flaky"]},
        {"id": "shipping", "type": "webhook", "depends_on": ["payment"]},
        {"id": "delivery", "type": "webhook", "event_type": "delivered", "depends_on": ["shipping"]},
        {"id": "finish", "type": "machine", "task_type": "data.set", "config": {"values": {"done": True}},
         "depends_on": ["delivery"]},
    ],
}


def start(api, definition: dict[str, Any], input_data: dict[str, Any] | None = None) -> str:
    status, body = api.post("/definitions", definition)
    assert status in (200, 201), body
    status, started = api.post("/instances", {"definition_name": definition["name"], "input_data": input_data or {}})
    assert status == 201, started
    return started["id"]


def get_raw(api, path: str, headers: dict[str, str] | None = None):
    return api.client.http.get(api.prefix + path, headers=headers or {})


def read_page(api, instance_id: str, query: str = "", headers: dict[str, str] | None = None):
    """(events, response headers) of one NDJSON request."""
    response = get_raw(api, f"/instances/{instance_id}/events{query}", headers)
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == "application/x-ndjson"
    text = response.body.decode()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()], response.headers


def read_all(api, instance_id: str, query: str = "") -> list[dict[str, Any]]:
    events, headers = read_page(api, instance_id, "?limit=1000" + query)
    assert headers["Stepflow-More"] == "false"
    return events


def wait_for_event(api, instance_id: str, event_type: str, timeout: float = 20.0) -> dict[str, Any]:
    """Follows the log (a settle window behind a running instance) until an event of the type shows."""
    deadline, cursor = time.monotonic() + timeout, ""
    while True:
        events, _ = read_page(api, instance_id, f"?wait=2{cursor}")
        found = [e for e in events if e["type"] == event_type]
        if found:
            return found[0]
        if events:
            cursor = f"&after={events[-1]['seq']}"
        assert time.monotonic() < deadline, f"no {event_type} event"


def tokens(local_aws) -> list[str]:
    ddb = local_aws.client("dynamodb")
    items = ddb.scan(TableName=local_aws.table_names["tasks"])["Items"]
    return [i["token"]["S"] for i in items if "token" in i]


def assert_no_secrets(local_aws, *bodies: Any) -> None:
    secrets = tokens(local_aws)
    assert secrets
    for body in bodies:
        text = body if isinstance(body, str) else json.dumps(body)
        assert '"snapshot"' not in text
        for token in secrets:
            assert token not in text


def test_the_log_read_in_pages_while_the_instance_runs_has_every_event_once_in_order(api, app_services, local_aws,
                                                                                  monkeypatch):
    # A shorter settle window keeps the test quick; moto's writes land within milliseconds.
    monkeypatch.setattr(app_services.events, "_settle", 0.3)
    instance_id = start(api, FLOW)
    seen: list[dict[str, Any]] = []
    bodies: list[Any] = []
    cursor = ""
    sent: set[str] = set()
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, seen
        events, headers = read_page(api, instance_id, f"?limit=2&wait=1{cursor}")
        assert len(events) <= 2
        bodies.append(events)
        seen += events
        if events:
            assert headers["Stepflow-Cursor"] == events[-1]["seq"]
            cursor = f"&after={events[-1]['seq']}"
        if headers["Stepflow-Ended"] == "true":
            break
        if not events:
            # On AWS, EventBridge tells the instance index that the execution ended (then instance.ended
            # is logged); the test runtime does not deliver those events, so a status read stands in.
            api.get(f"/instances/{instance_id}")
        for event in events:
            if event["type"] != "task.created" or event["step"] in sent:
                continue
            sent.add(event["step"])
            # Each webhook step is completed another way: by event_type, by name, by its callback URL.
            if event["step"] == "payment":
                status, body = api.post(f"/instances/{instance_id}/events",
                                        {"event_type": "payment.received", "data": {"paid": 42}})
            elif event["step"] == "shipping":
                status, body = api.post(f"/instances/{instance_id}/events",
                                        {"step": "shipping", "data": {"carrier": "ups"}, "sent_by": "warehouse"})
            else:
                assert "callback_url" not in event["data"]  # the log is for viewers; the key is not
                url = api.get(f"/tasks/{event['data']['task_id']}/callback")[1]["callback_url"]
                assert url.startswith("/workflows/callbacks/") and len(url) > len("/workflows/callbacks/") + 40
                response = api.client.http.post(url, body=json.dumps({"signed_by": "carol"}),
                                                headers={"content-type": "application/json"})
                status, body = response.status_code, json.loads(response.body)
            assert status in (200, 202), body
            bodies.append(body)

    done = api.wait(instance_id)
    assert done["status"] == "completed", done
    log = read_all(api, instance_id)
    # Every event once, in seq order, and exactly the log as it stands at the end.
    assert [e["seq"] for e in seen] == [e["seq"] for e in log]
    assert seen == log
    assert [e["seq"] for e in log] == sorted({e["seq"] for e in log})
    for event in log:
        assert set(event) <= {"seq", "type", "at", "step", "data"} and len(event["seq"]) == SEQ_LEN
    assert_no_secrets(local_aws, bodies, log)

    def of(step: str) -> list[str]:
        return [e["type"] for e in log if e.get("step") == step]

    types = [e["type"] for e in log]
    assert types[0] == "instance.started" and types[-1] == "instance.ended"
    assert of("prepare") == ["step.started", "step.succeeded"]
    # Custom events are logged before the step's end; one posing as a Stepflow event is renamed.
    assert of("check") == ["step.started", "order.checked", "custom.step.succeeded", "step.succeeded"]
    checked = next(e for e in log if e["type"] == "order.checked")
    assert checked["data"] == {"order": "A-1", "ok": True}
    for step in ("fan_a", "fan_b"):
        assert of(step) == ["step.started", "step.succeeded"]
    assert of("fan_c") == ["step.started", "log", "step.succeeded"]  # util.log writes into the event log
    assert of("flaky") == ["step.started", "flaky.tried", "step.retried", "step.started", "step.succeeded"]
    flaky = [e["data"] for e in log if e.get("step") == "flaky" and e["type"].startswith("step.")]
    assert [d["attempt"] for d in flaky] == [1, 1, 2, 2]
    assert flaky[1]["error"] == "Test.Flaky" and flaky[1]["next_attempt"] == 2
    assert flaky[1]["message"] == "the first attempt fails" and "cause" not in flaky[1]
    assert flaky[3]["output"] == {"flaky_attempts": 2}
    assert of("payment") == ["task.created", "event.received", "task.completed"]
    assert of("shipping") == ["task.created", "event.received", "task.completed"]
    assert of("delivery") == ["task.created", "event.received", "task.completed"]
    received = {e["step"]: e["data"] for e in log if e["type"] == "event.received"}
    assert received["payment"] == {"task_id": received["payment"]["task_id"], "kind": "webhook", "source": "api",
                                   "event_type": "payment.received", "data": {"paid": 42}}
    assert received["shipping"]["sent_by"] == "warehouse"
    assert received["delivery"]["source"] == "callback"
    # Causality: each step's events come after what it waited for.
    position = {(e.get("step"), e["type"]): i for i, e in enumerate(log)}
    for step in ("fan_a", "fan_b", "fan_c", "flaky"):
        assert position[("check", "step.succeeded")] < position[(step, "step.started")]
        assert position[(step, "step.succeeded")] < position[("payment", "task.created")]
    assert position[("delivery", "task.completed")] < position[("finish", "step.started")]

    # The webhook data became the steps' outputs, each under its step's id, and so instance data.
    data = done["context_data"]
    assert data["payment"] == {"paid": 42} and data["shipping"] == {"carrier": "ups"}
    assert data["delivery"] == {"signed_by": "carol"}
    assert "paid" not in data and "carrier" not in data and "signed_by" not in data
    assert data["checked"] is True and data["a"] == 1 and data["b"] == 2

    # Read again from the start in pages of 3: the same events.
    again, cursor = [], ""
    while True:
        events, headers = read_page(api, instance_id, f"?limit=3{cursor}")
        again += events
        if headers["Stepflow-More"] == "false":
            assert headers["Stepflow-Ended"] == "true"
            break
        cursor = f"&after={events[-1]['seq']}"
    assert again == log


SMALL = {
    "name": "events_small",
    "steps": [
        {"id": "hello", "type": "machine", "task_type": "data.set", "config": {"values": {"greeting": "hi"}}},
        {"id": "reply", "type": "webhook", "event_type": "reply.sent", "depends_on": ["hello"]},
        {"id": "bye", "type": "machine", "task_type": "util.log", "config": {"message": "bye"}, "depends_on": ["reply"]},
    ],
}


def test_sse_and_last_event_id_resume(api, app_services):
    instance_id = start(api, SMALL)
    task = wait_for_task(api, instance_id, "reply")
    assert api.post(f"/instances/{instance_id}/events", {"step": "reply", "data": {"text": "ok"}})[0] == 202
    assert api.wait(instance_id)["status"] == "completed"
    log = read_all(api, instance_id)
    assert [e["type"] for e in log] == ["instance.started", "step.started", "step.succeeded", "task.created",
                                        "event.received", "task.completed", "step.started", "log", "step.succeeded",
                                        "instance.ended"]
    assert log[3]["data"]["task_id"] == task["id"]

    response = get_raw(api, f"/instances/{instance_id}/events?sse=true&limit=4")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    text = response.body.decode()
    assert text.startswith("retry: ")
    frames = [f for f in text.split("\n\n") if f and not f.startswith("retry:")]
    assert len(frames) == 4
    parsed = []
    for frame in frames:
        fields = dict(line.split(": ", 1) for line in frame.split("\n"))
        assert set(fields) == {"id", "event", "data"}
        data = json.loads(fields["data"])
        assert data["seq"] == fields["id"] and data["type"] == fields["event"]
        parsed.append(data)
    assert parsed == log[:4]

    # An EventSource reconnects with the last id it saw: the rest follows, then 204 (stop reconnecting).
    rest = get_raw(api, f"/instances/{instance_id}/events?sse=true", {"Last-Event-ID": parsed[-1]["seq"]})
    ids = [line[len("id: "):] for line in rest.body.decode().split("\n") if line.startswith("id: ")]
    assert ids == [e["seq"] for e in log[4:]]
    assert rest.headers["Stepflow-Ended"] == "true"
    end = get_raw(api, f"/instances/{instance_id}/events?sse=true", {"Last-Event-ID": ids[-1]})
    assert end.status_code == 204
    # The query's cursor wins over the header; NDJSON says "ended" with an empty page.
    events, headers = read_page(api, instance_id, f"?after={log[-2]['seq']}", {"Last-Event-ID": ids[-1]})
    assert events == log[-1:] and headers["Stepflow-Ended"] == "true"
    events, headers = read_page(api, instance_id, f"?after={log[-1]['seq']}")
    assert events == [] and headers["Stepflow-Ended"] == "true" and headers["Stepflow-Cursor"] == log[-1]["seq"]


def test_a_running_instance_hands_out_only_settled_events_and_wait_waits_for_them(api, app_services):
    instance_id = start(api, SMALL)
    wait_for_task(api, instance_id, "reply")
    started = time.monotonic()
    events, headers = read_page(api, instance_id, "?wait=5")
    # Nothing is handed out before it is a settle window old; wait returned as soon as there was some.
    assert events and time.monotonic() - started < 5
    assert headers["Stepflow-Ended"] == "false" and headers["Stepflow-Instance-Status"] in ("running", "waiting")
    assert "Last-Event-ID" not in headers
    assert api.post(f"/instances/{instance_id}/events", {"event_type": "reply.sent", "data": {}})[0] == 202
    api.wait(instance_id)
    rest, _ = read_page(api, instance_id, f"?after={events[-1]['seq']}")
    assert events + rest == read_all(api, instance_id)


def test_sending_events_that_nothing_waits_for(api, app_services):
    instance_id = start(api, SMALL)
    wait_for_task(api, instance_id, "reply")
    status, body = api.post(f"/instances/{instance_id}/events", {"step": "hello", "data": {}})
    assert status == 409 and "reply" in body["detail"]
    assert api.post(f"/instances/{instance_id}/events", {"event_type": "other", "data": {}})[0] == 409
    # Both given: both must match.
    assert api.post(f"/instances/{instance_id}/events",
                    {"step": "reply", "event_type": "other", "data": {}})[0] == 409
    assert api.post(f"/instances/{instance_id}/events", {"data": {}})[0] == 422
    assert api.post(f"/instances/{instance_id}/events", {"step": "reply", "data": [1]})[0] == 422
    assert api.post("/instances/nope/events", {"step": "reply", "data": {}})[0] == 404

    status, body = api.post(f"/instances/{instance_id}/events", {"step": "reply", "event_type": "reply.sent",
                                                                 "data": {"n": 1}})
    assert status == 202
    assert [t["step_name"] for t in body["completed"]] == ["reply"]
    [completed] = body["completed"]
    assert completed["status"] == "completed" and completed["output_data"] == {"reply": {"n": 1}}
    # The step no longer waits; once the instance has ended, nothing takes events.
    assert api.post(f"/instances/{instance_id}/events", {"step": "reply", "data": {}})[0] == 409
    assert api.wait(instance_id)["context_data"]["reply"] == {"n": 1}
    status, body = api.post(f"/instances/{instance_id}/events", {"step": "reply", "data": {}})
    assert status == 409 and "completed" in body["detail"]


def test_reading_errors(api, app_services):
    assert api.get("/instances/nope/events")[0] == 404
    instance_id = start(api, SMALL)
    for query in ("?after=5", "?after=20250101T120000.123456Z", "?limit=0", "?limit=1001", "?wait=21",
                  "?wait=soon", "?sse=maybe"):
        status, body = api.get(f"/instances/{instance_id}/events{query}")
        assert status == 400 and body["detail"], query
    response = get_raw(api, f"/instances/{instance_id}/events", {"Last-Event-ID": "garbage"})
    assert response.status_code == 400
    assert api.get(f"/instances/{instance_id}/events?limit=1000&wait=0")[0] == 200


def test_webhook_callbacks(api, app_services, local_aws):
    instance_id = start(api, SMALL)
    task = wait_for_task(api, instance_id, "reply")
    # GET /tasks/{id}/callback shows where to call back: a path with a key, not the token.
    status, view = api.get(f"/tasks/{task['id']}")
    assert status == 200 and view["kind"] == "webhook" and view["event_type"] == "reply.sent"
    assert "callback_url" not in view and "callback_key" not in view
    assert "form_schema" in view and view["form_schema"] is None
    status, callback = api.get(f"/tasks/{task['id']}/callback")
    assert status == 200, callback
    url = callback["callback_url"]
    key = url.rsplit("/", 1)[-1]
    assert url == f"/workflows/callbacks/{key}" and len(key) >= 43
    # The instance runs: its events are handed out once they are a settle window (1 s) old.
    created = wait_for_event(api, instance_id, "task.created")
    assert "callback_url" not in created["data"] and key not in json.dumps(created)
    assert_no_secrets(local_aws, view, callback, created)

    unknown = api.client.http.post("/workflows/callbacks/" + "x" * 43, body="{}",
                                   headers={"content-type": "application/json"})
    assert unknown.status_code == 404
    bad = api.client.http.post(url, body="[1]", headers={"content-type": "application/json"})
    assert bad.status_code == 422
    ok = api.client.http.post(url, body=json.dumps({"answer": "yes"}), headers={"content-type": "application/json"})
    assert ok.status_code == 200, ok.body
    answer = json.loads(ok.body)
    assert answer == {"task_id": task["id"], "step_name": "reply", "status": "completed",
                      "completed_at": answer["completed_at"]}
    # Single use: the key died with the step.
    again = api.client.http.post(url, body="{}", headers={"content-type": "application/json"})
    assert again.status_code == 404
    done = api.wait(instance_id)
    assert done["status"] == "completed" and done["context_data"]["reply"] == {"answer": "yes"}
    assert api.get(f"/tasks/{task['id']}")[1]["output_data"] == {"reply": {"answer": "yes"}}


def test_a_callback_after_the_step_timed_out_is_gone(api, app_services):
    definition = {"name": "events_timeout", "steps": [
        {"id": "reply", "type": "webhook", "timeout_seconds": 1}]}
    instance_id = start(api, definition)
    task = wait_for_task(api, instance_id, "reply")
    url = api.get(f"/tasks/{task['id']}/callback")[1]["callback_url"]
    assert api.wait(instance_id)["status"] == "failed"
    empty = api.client.http.post(url, body="", headers={"content-type": "application/json"})
    assert empty.status_code == 404, empty.body  # the key died when the step ended
    assert api.post(f"/instances/{instance_id}/events", {"step": "reply", "data": {}})[0] == 409
    # Nothing was completed: the task closed with the instance, saying why.
    log = read_all(api, instance_id)
    assert [e["type"] for e in log][-3:] == ["task.created", "task.expired", "instance.ended"]
    assert log[-2]["data"]["reason"] == "the instance failed (Stepflow.TaskTimedOut)"


def test_a_callback_the_workflow_no_longer_waits_for_expires_the_task(api, app_services, local_aws):
    # The instance index has not caught up with the end yet: the delivery finds the token dead.
    definition = {"name": "events_timeout", "steps": [
        {"id": "reply", "type": "webhook", "timeout_seconds": 1}]}
    instance_id = start(api, definition)
    task = wait_for_task(api, instance_id, "reply")
    url = api.get(f"/tasks/{task['id']}/callback")[1]["callback_url"]
    # Its own execution (it may have timed out already on a busy machine: then this returns at once).
    local_aws.wait_for_execution(app_services.instance_store.get(instance_id)["execution_arn"])
    empty = api.client.http.post(url, body="", headers={"content-type": "application/json"})
    assert empty.status_code == 410, empty.body
    assert api.get(f"/tasks/{task['id']}")[1]["status"] == "expired"
    # The expired step's key died with it.
    assert api.client.http.post(url, body="{}", headers={"content-type": "application/json"}).status_code == 404
    assert api.get(f"/tasks/{task['id']}/callback")[0] == 410
    assert api.wait(instance_id)["status"] == "failed"
    types = [e["type"] for e in read_all(api, instance_id)]
    # A refused completion leaves no task.completed: the event arrived, the task had expired.
    assert types[-3:] == ["event.received", "task.expired", "instance.ended"] and "task.completed" not in types


def test_concurrent_writers_and_a_concurrent_reader_on_moto(local_aws):
    """Four writers append at once while a reader follows its cursor: no key collides, and the
    reader sees every event exactly once, in seq order."""
    from datetime import UTC, datetime

    from chalicelib.aws.event_store import EventStore
    from chalicelib.service.events import EventService

    store = EventStore(local_aws.client("dynamodb"), local_aws.table_names["events"])
    instance = {"id": "inst", "status": "running"}

    class Instances:
        def get(self, instance_id):
            return dict(instance) if instance_id == "inst" else None

    service = EventService(store, Instances(), tasks=None, now=lambda: datetime.now(UTC), settle_seconds=0.2)
    service.record("inst", "instance.started")
    seen: list[dict[str, Any]] = []

    def write(n: int) -> None:
        for i in range(20):
            store.append("inst", "test.tick", {"writer": n, "i": i}, step=f"w{n}")

    def read() -> None:
        cursor = None
        while True:
            page = service.read("inst", after=cursor, limit=7, wait=0.5)
            seen.extend(page["events"])
            cursor = page["cursor"]
            if page["ended"]:
                return

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    instance.update(status="completed", completed_at=datetime.now(UTC).isoformat())
    service.record("inst", "instance.ended")
    reader.join(30)
    assert not reader.is_alive()

    log = service.read("inst", limit=1000)["events"]
    assert len(log) == 4 * 20 + 2 and len({e["seq"] for e in log}) == len(log)
    assert [e["seq"] for e in log] == sorted(e["seq"] for e in log)
    assert seen == log
    # Each writer's events are in the order it wrote them.
    for n in range(4):
        assert [e["data"]["i"] for e in log if e.get("step") == f"w{n}"] == list(range(20))
    assert service.purge("inst") == len(log)
    assert service.read("inst")["events"] == []


def test_a_write_that_lands_after_a_reader_read_past_its_stamp_is_still_handed_out(local_aws):
    """A writer stamps its seq, then stalls (longer than any settle window) before its write lands; a
    reader meanwhile reads past that seq. The write is refused at the reader's fence and stamped again
    above it, so the reader following its cursor still gets it, once."""
    from datetime import UTC, datetime

    from chalicelib.aws.event_store import EventStore
    from chalicelib.service.events import EventService

    ddb = local_aws.client("dynamodb")
    stamped, release = threading.Event(), threading.Event()

    class StallingClient:
        """The DynamoDB client, except that the write of the `late` event waits (after its stamp)."""

        def __getattr__(self, name):
            return getattr(ddb, name)

        def transact_write_items(self, **kwargs):
            if any(item.get("Put", {}).get("Item", {}).get("type", {}).get("S") == "late"
                   for item in kwargs["TransactItems"]) and not release.is_set():
                stamped.set()
                assert release.wait(30)
            return ddb.transact_write_items(**kwargs)

    store = EventStore(StallingClient(), local_aws.table_names["events"])
    instance = {"id": "fenced", "status": "running"}

    class Instances:
        def get(self, instance_id):
            return dict(instance) if instance_id == "fenced" else None

    # No settle window: the reader hands out whatever it finds, the worst case for a late write.
    service = EventService(store, Instances(), tasks=None, now=lambda: datetime.now(UTC), settle_seconds=0.0)
    store.append("fenced", "early")
    writer = threading.Thread(target=store.append, args=("fenced", "late"))
    writer.start()
    assert stamped.wait(30)
    store.append("fenced", "next")  # stamped after `late`, landed before it
    first = service.read("fenced")
    assert [e["type"] for e in first["events"]] == ["early", "next"]
    release.set()
    writer.join(30)
    assert not writer.is_alive()
    second = service.read("fenced", after=first["cursor"])
    assert [e["type"] for e in second["events"]] == ["late"]
    assert second["events"][0]["seq"] > first["cursor"]
    assert service.read("fenced", after=second["cursor"])["events"] == []


def test_a_completion_whose_seq_a_reader_already_read_past_is_logged_past_the_reader(api, app_services):
    """task.completed is stamped before the completing transaction; when a reader of the log has read
    past that stamp meanwhile (its fence is ahead), the transaction is refused at the fence and made
    again with seqs above it: the completion stands once, and its event lands where the reader reads on."""
    from datetime import UTC, datetime, timedelta

    from chalicelib.core import event_stream as es

    instance_id = start(api, {"name": "fenced_completion", "steps": [{"id": "approve", "type": "human"}]})
    task = wait_for_task(api, instance_id, "approve")
    store = app_services.event_store
    # A reader a second ahead of this process's clock (a later writer's seq it was handed, say).
    ahead = es.make_seq(datetime.now(UTC) + timedelta(seconds=1), "f" * 16)
    store.fence(instance_id, ahead)
    status, done = api.post(f"/tasks/{task['id']}/complete", {"output_data": {}, "completed_by": "ada"})
    assert status == 200, done
    assert api.wait(instance_id)["status"] == "completed"
    log = read_all(api, instance_id)
    completed = [e for e in log if e["type"] == "task.completed"]
    assert len(completed) == 1 and completed[0]["seq"] > ahead
    assert app_services.task_store.get(task["id"])["completed_seq"] == completed[0]["seq"]
    assert [e["seq"] for e in log] == sorted(e["seq"] for e in log)
