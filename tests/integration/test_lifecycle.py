"""Instance lifecycle through the API: idempotent and deferred starts, sync runs, cancel, retry,
resume, cleanup, listing filters, status events and completion webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from http.server import BaseHTTPRequestHandler

import pytest

from chalicelib.config import LOCAL_WEBHOOK_SECRET
from chalicelib.examples import bundled
from stepflow_local.schedules import scheduled_event
from tests.serving import serving


class Receiver(BaseHTTPRequestHandler):
    """Records every request; answers with the status set for its path (200 by default)."""

    requests: list[dict] = []
    status: dict[str, int] = {}

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        code = self.status.get(self.path.split("?")[0], 200)
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.requests, Receiver.status = [], {}
    with serving(Receiver) as url:
        yield url


def register(api, data):
    status, body = api.post("/definitions", data)
    assert status in (200, 201), body


def pipeline(api):
    register(api, bundled()["image_pipeline"])


def test_idempotent_start_returns_the_same_instance_and_refuses_a_different_body(api):
    pipeline(api)
    body = {"definition_name": "image_pipeline", "input_data": {"prompt": "cat"}}
    headers = {"content-type": "application/json", "idempotency-key": "order-17"}
    first = api.client.http.post("/workflows/instances", body=json.dumps(body), headers=headers)
    again = api.client.http.post("/workflows/instances", body=json.dumps(body), headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert json.loads(first.body)["id"] == json.loads(again.body)["id"]
    other = api.client.http.post("/workflows/instances", headers=headers, body=json.dumps(
        {**body, "input_data": {"prompt": "dog"}}))
    assert other.status_code == 409
    assert len(api.get("/instances?workflow_name=image_pipeline")[1]["items"]) == 1


def test_a_correlation_id_tags_instances_and_never_deduplicates_them(api):
    # Two starts with the same correlation_id (and the same body) are two instances, both found by the
    # tag; only an Idempotency-Key names an instance.
    pipeline(api)
    body = {"definition_name": "image_pipeline", "input_data": {"prompt": "cat"}, "correlation_id": "order-9"}
    status, a = api.post("/instances", body)
    status2, b = api.post("/instances", body)
    assert (status, status2) == (201, 201) and a["id"] != b["id"]
    assert a["correlation_id"] == b["correlation_id"] == "order-9"
    api.post("/instances", {**body, "correlation_id": "order-10"})
    status, page = api.get("/instances?correlation_id=order-9")
    assert status == 200 and {i["id"] for i in page["items"]} == {a["id"], b["id"]}
    assert all(i["correlation_id"] == "order-9" for i in page["items"])
    headers = {"content-type": "application/json", "idempotency-key": "k-9"}
    first = api.client.http.post("/workflows/instances", body=json.dumps(body), headers=headers)
    again = api.client.http.post("/workflows/instances", body=json.dumps(body), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert json.loads(first.body)["id"] == json.loads(again.body)["id"] not in (a["id"], b["id"])


def test_create_without_starting_then_start(api):
    pipeline(api)
    status, created = api.post("/instances", {"definition_name": "image_pipeline", "input_data": {"prompt": "x"},
                                              "start": False})
    assert status == 201 and created["status"] == "pending" and created["step_history"] == []
    assert api.get("/instances?status=pending")[1]["items"][0]["id"] == created["id"]
    status, started = api.post(f"/instances/{created['id']}/start")
    assert status == 200 and started["status"] in ("running", "completed")
    assert api.wait(created["id"])["status"] == "completed"
    assert api.post(f"/instances/{created['id']}/start")[0] == 409


def test_sync_run_returns_the_result_and_a_slow_one_returns_202(api):
    pipeline(api)
    status, body = api.post("/definitions/image_pipeline/run", {"input_data": {"prompt": "sun"}})
    assert status == 200 and body["status"] == "completed"
    assert body["result"]["refined"] == "s3://bucket/sun.png"
    register(api, {"name": "slow", "steps": [{"id": "nap", "type": "timer", "seconds": 3000},
                                             {"id": "done", "type": "machine", "task_type": "data.set",
                                              "depends_on": ["nap"], "config": {"values": {"woke": True}}}]})
    status, pending = api.post("/definitions/slow/run", {"wait_seconds": 0.3})
    assert status == 202 and pending["status"] == "running"
    assert api.get(f"/instances/{pending['id']}/result")[0] == 202
    deadline = time.monotonic() + 60
    while (result := api.get(f"/instances/{pending['id']}/result"))[0] == 202 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert result[0] == 200 and result[1]["result"]["woke"] is True  # 3000 s at the tests' 1/100 time scale
    assert api.post("/definitions/missing/run", {})[0] == 404


def test_cancel_ends_the_instance_and_cancels_its_pending_tasks(api):
    register(api, bundled()["expense_approval"])
    _, started = api.post("/instances", {"definition_name": "expense_approval",
                                         "input_data": {"requester": "a", "manager": "m", "amount": 5}})
    api.wait(started["id"], until=("waiting",))
    api.one_task(f"instance_id={started['id']}")  # the manager's task is open
    status, canceled = api.post(f"/instances/{started['id']}/cancel?reason=duplicate%20request")
    assert status == 200 and canceled["status"] == "canceled" and canceled["cancel_reason"] == "duplicate request"
    [task] = api.get(f"/tasks?instance_id={started['id']}")[1]["items"]
    assert task["status"] == "canceled"
    assert api.post(f"/tasks/{task['id']}/complete", {"output_data": {"approved": True}, "completed_by": "m"})[0] == 410
    assert api.post(f"/instances/{started['id']}/cancel")[0] == 409


def failing_then_fixable(receiver):
    return {"name": "flaky_chain", "steps": [
        {"id": "count", "type": "machine", "task_type": "http.request", "config": {"url": f"{receiver}/count"}},
        {"id": "call", "type": "machine", "task_type": "http.request", "depends_on": ["count"],
         "config": {"url": f"{receiver}/fragile"}},
        {"id": "finish", "type": "machine", "task_type": "data.set", "depends_on": ["call"],
         "config": {"values": {"finished": True}}},
    ]}


def test_resume_continues_from_the_failed_step_without_rerunning_finished_ones(api, receiver):
    register(api, failing_then_fixable(receiver))
    Receiver.status["/fragile"] = 503
    _, started = api.post("/instances", {"definition_name": "flaky_chain"})
    failed = api.wait(started["id"])
    assert failed["status"] == "failed" and failed["error"]["error"] == "HttpStatusError"
    status, again = api.post(f"/instances/{started['id']}/resume")
    assert status == 200, again
    done = api.wait(started["id"])
    assert done["status"] == "failed"  # still broken: resuming again fails the same way
    Receiver.status["/fragile"] = 200  # the cause is fixed
    status, resumed = api.post(f"/instances/{started['id']}/resume")
    assert status == 200 and resumed["status"] in ("running", "completed")
    done = api.wait(started["id"])
    assert done["status"] == "completed", done
    assert done["context_data"]["finished"] is True
    assert [r["path"] for r in Receiver.requests].count("/count") == 1  # never run again
    assert [r["kind"] for r in done["runs"]] == ["start", "resume", "resume"]
    history = {s["step_name"]: s["status"] for s in done["step_history"]}
    assert history == {"count": "succeeded", "call": "succeeded", "finish": "succeeded"}
    assert api.post(f"/instances/{started['id']}/resume")[0] == 409


def test_retry_starts_a_new_linked_run(api, receiver):
    register(api, failing_then_fixable(receiver))
    Receiver.status["/fragile"] = 500
    origin = {"origin_instance": "parent-1", "origin_zone": "eu", "origin_tenant_id": "acme-eu",
              "origin_reference": "order/42"}
    _, started = api.post("/instances", {"definition_name": "flaky_chain", "tenant_id": "acme",
                                         "correlation_id": "order-42", **origin})
    assert api.wait(started["id"])["status"] == "failed"
    Receiver.status["/fragile"] = 200
    status, retry = api.post(f"/instances/{started['id']}/retry")
    assert status == 201 and retry["id"] != started["id"] and retry["retry_of"] == started["id"]
    assert api.wait(retry["id"])["status"] == "completed"
    assert api.get(f"/instances/{started['id']}")[1]["retried_by"] == retry["id"]
    retried = api.get(f"/instances/{retry['id']}")[1]
    assert retried["tenant_id"] == "acme"
    # Run for the same caller: its completion names the same origin (the correlation_id names the original).
    assert {k: retried[k] for k in origin} == origin and retried["correlation_id"] is None
    assert api.post(f"/instances/{retry['id']}/retry")[0] == 409


def test_listing_filters_return_exactly_the_matching_instances_across_pages(api):
    pipeline(api)
    made = {}
    for i in range(7):
        _, body = api.post("/instances", {"definition_name": "image_pipeline", "input_data": {"prompt": str(i)},
                                          "tenant_id": "t1" if i % 2 else "t2", "user_id": f"u{i % 3}",
                                          "correlation_id": f"c{i}", "start": False})
        made[body["id"]] = body
    def all_pages(query):
        ids, cursor = [], None
        while True:
            status, page = api.get(f"/instances?{query}&limit=2" + (f"&cursor={cursor}" if cursor else ""))
            assert status == 200, page
            ids += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                return ids
    newest_first = sorted(made, key=lambda i: made[i]["created_at"], reverse=True)
    of = {t: [i for i in newest_first if made[i]["tenant_id"] == t] for t in ("t1", "t2")}
    # With authentication off, a listing is of the tenant `tenant_id` names (none: tenant-less instances).
    assert all_pages("workflow_name=image_pipeline&tenant_id=t1") == of["t1"]
    assert all_pages("workflow_name=image_pipeline&tenant_id=t2") == of["t2"]
    assert all_pages("workflow_name=image_pipeline") == []
    assert all_pages("tenant_id=t1") == of["t1"]
    assert all_pages("created_by=u0&tenant_id=t2") == [i for i in of["t2"] if made[i]["created_by"] == "u0"]
    assert all_pages("correlation_id=c3&tenant_id=t1") == [i for i in made if made[i]["correlation_id"] == "c3"]
    assert all_pages("status=pending&workflow_name=image_pipeline&tenant_id=t1") == of["t1"]
    middle = made[of["t1"][1]]["created_at"]
    assert all_pages(f"started_before={middle}&tenant_id=t1") == of["t1"][1:]
    assert all_pages(f"started_after={middle}&tenant_id=t1") == of["t1"][:2]
    # A combination no index serves is refused, naming the ones that work.
    status, body = api.get("/instances?workflow_name=image_pipeline&created_by=u0&tenant_id=t1")
    assert status == 400 and "workflow_name + status" in body["detail"], body
    gone = of["t1"][0]
    assert api.post(f"/instances/{gone}/cancel")[0] == 200
    assert api.client.http.delete(f"/workflows/instances/{gone}").status_code == 200
    assert gone not in all_pages("workflow_name=image_pipeline&tenant_id=t1")
    assert gone not in all_pages("status=canceled&tenant_id=t1")
    assert gone in all_pages("workflow_name=image_pipeline&include_deleted=true&tenant_id=t1")
    assert gone in all_pages("status=canceled&include_deleted=true&tenant_id=t1")
    assert api.client.http.delete(f"/workflows/instances/{gone}?purge=true").status_code == 200
    assert api.get(f"/instances/{gone}")[0] == 404
    assert api.get("/instances?started_after=yesterday")[0] == 400


def test_status_change_events_keep_the_index_in_step(api, local_aws):
    import app as app_module

    pipeline(api)
    _, started = api.post("/instances", {"definition_name": "image_pipeline", "input_data": {"prompt": "q"}})
    execution_arn = app_module.services.instance_store.get(started["id"])["execution_arn"]
    local_aws.wait_for_execution(execution_arn)
    # No read of the instance since: the index still says running until the event arrives.
    assert app_module.services.instance_store.get(started["id"])["status"] == "running"
    event = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change", "account": "1",
             "region": "us-east-1", "time": "2026-01-01T00:00:00Z", "id": "e", "version": "0", "resources": [],
             "detail": {"executionArn": execution_arn, "name": started["id"], "status": "SUCCEEDED"}}
    assert app_module.execution_events(event, None) == "completed"
    assert api.get("/instances?status=completed")[1]["items"][0]["id"] == started["id"]


def test_completion_webhook_is_signed_and_a_failing_receiver_is_retried(api, receiver):
    import app as app_module

    pipeline(api)
    Receiver.status["/hook"] = 500
    notifier = app_module.services.notifier
    saved, notifier.backoff = notifier.backoff, (0, 0, 0)  # retry at the next sweep, not in 10 s
    try:
        _, started = api.post("/instances", {"definition_name": "image_pipeline", "input_data": {"prompt": "w"},
                                             "webhook_url": f"{receiver}/hook"})
        assert api.wait(started["id"])["status"] == "completed"
        first = api.get(f"/instances/{started['id']}")[1]["notifications"]
        assert [(n["attempt"], n["ok"], n["status_code"]) for n in first] == [(1, False, 500)]
        Receiver.status["/hook"] = 200
        app_module.overdue_sweep(scheduled_event("overdue_sweep", "us-east-1"), None)
    finally:
        notifier.backoff = saved
    attempts = api.get(f"/instances/{started['id']}")[1]["notifications"]
    assert [(n["attempt"], n["ok"]) for n in attempts] == [(1, False), (2, True)]
    delivered = [r for r in Receiver.requests if r["path"] == "/hook"]
    assert len(delivered) == 2
    last = delivered[-1]
    body, stamp = last["body"], last["headers"]["X-Stepflow-Timestamp"]
    expected = hmac.new(LOCAL_WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert last["headers"]["X-Stepflow-Signature"] == f"v1={expected}"
    summary = json.loads(body)
    assert summary["id"] == started["id"] and summary["status"] == "completed"
    assert summary["result"]["refined"] == "s3://bucket/w.png"


def test_the_local_runtime_delivers_status_changes_to_the_app(api, local_aws):
    import app as app_module
    from stepflow_local.status_events import StatusWatcher, status_handlers

    pipeline(api)
    _, started = api.post("/instances", {"definition_name": "image_pipeline", "input_data": {"prompt": "z"}})
    record = app_module.services.instance_store.get(started["id"])
    local_aws.wait_for_execution(record["execution_arn"])
    watcher = StatusWatcher(local_aws, status_handlers(app_module.app))
    assert watcher.poll() >= 1
    assert app_module.services.instance_store.get(started["id"])["status"] == "completed"
    assert watcher.poll() == 0  # each change is delivered once


CONTINUED = {
    "name": "continued_total", "version": "1.0.0",
    "input_schema": {"type": "object", "required": ["amount"], "additionalProperties": False,
                     "properties": {"amount": {"type": "number"}}},
    "steps": [{"id": "tally", "type": "machine", "task_type": "data.set", "config": {"values": {"tallied": True}}}],
}


def test_a_completed_instance_continues_from_its_final_data_with_new_input_linked_both_ways(api):
    register(api, CONTINUED)
    status, first = api.post("/instances", {"definition_name": "continued_total", "input_data": {"amount": 5},
                                            "correlation_id": "order-5"})
    assert status == 201
    assert api.wait(first["id"])["status"] == "completed"
    response = api.client.http.post(f"/workflows/instances/{first['id']}/continue",
                                    body=json.dumps({"input_data": {"amount": 7, "note": "second"}}),
                                    headers={"content-type": "application/json"})
    assert response.status_code == 201, response.body
    second = json.loads(response.body)
    assert response.headers["Location"] == f"/workflows/instances/{second['id']}"
    assert second["continued_from"] == first["id"] and second["correlation_id"] == "order-5"
    # The final data of the first run (its step's output included) with the new input laid over it.
    assert second["input_data"] == {"amount": 7, "tallied": True, "note": "second"}
    done = api.wait(second["id"])
    assert done["status"] == "completed" and done["output"]["note"] == "second"
    assert api.get(f"/instances/{first['id']}")[1]["continued_by"] == second["id"]
    # Only a completed instance continues; the body takes only input_data, as an object (a well-formed body that is wrong: 422).
    assert api.post(f"/instances/{first['id']}/continue", {"input": {}})[0] == 422
    assert api.post(f"/instances/{first['id']}/continue", {"input_data": [1]})[0] == 422
    status, pending = api.post("/instances", {"definition_name": "continued_total", "input_data": {"amount": 1},
                                              "start": False})
    status, refused = api.post(f"/instances/{pending['id']}/continue", {})
    assert status == 409 and "only a completed instance" in refused["detail"]
    assert api.post("/instances/nope/continue", {})[0] == 404


def test_cancel_with_purge_cancels_and_removes_the_instance_its_tasks_and_events(api):
    register(api, {"name": "purged_review", "version": "1.0.0", "steps": [
        {"id": "review", "type": "human", "assignee": "ada",
         "form_schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}]})
    status, started = api.post("/instances", {"definition_name": "purged_review", "input_data": {}})
    instance_id = started["id"]
    task = api.one_task(f"instance_id={instance_id}")
    status, gone = api.post(f"/instances/{instance_id}/cancel?purge=true&reason=mistake")
    assert status == 200 and gone["purged"] is True and gone["status"] == "canceled", gone
    assert gone["cancel_reason"] == "mistake"
    assert api.get(f"/instances/{instance_id}")[0] == 404
    assert api.get(f"/tasks/{task['id']}")[0] == 404
    assert api.get(f"/instances/{instance_id}/events")[0] == 404
    assert api.get("/instances?include_deleted=true&workflow_name=purged_review")[1]["items"] == []
    # Without purge, a cancel keeps the instance.
    status, kept = api.post("/instances", {"definition_name": "purged_review", "input_data": {}})
    status, canceled = api.post(f"/instances/{kept['id']}/cancel")
    assert status == 200 and "purged" not in canceled and api.get(f"/instances/{kept['id']}")[0] == 200
