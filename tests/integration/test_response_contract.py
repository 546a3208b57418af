"""Every JSON operation answers what /openapi.json declares: a tour of the whole API through the app, each
answer (successes and errors alike) validated against the document it serves, and every declared
success status reached."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.contract import Contract

PREFIX = "/workflows"
TOUR = {
    "name": "contract_tour", "description": "A form, then two webhook steps side by side",
    "input_schema": {"type": "object", "properties": {"requester": {"type": "string"}}},
    "steps": [
        {"id": "prepare", "type": "machine", "task_type": "data.set", "config": {"values": {"prepared": True}}},
        {"id": "review", "type": "human", "title": "Review", "depends_on": ["prepare"], "assignee_group": "reviewers",
         "due_in": "1d", "escalation": {"action": "notify"},
         "form_schema": {"type": "object", "required": ["approved"],
                         "properties": {"approved": {"type": "boolean"}, "comments": {"type": "string"}}}},
        {"id": "confirm", "type": "webhook", "depends_on": ["review"], "event_type": "confirmed"},
        {"id": "ship", "type": "webhook", "depends_on": ["review"], "event_type": "shipped"},
    ],
}
QUICK = {"name": "contract_quick", "steps": [
    {"id": "check", "type": "machine", "task_type": "data.assert", "config": {"condition": "ok == true"}}]}


class Checked:
    """The app through chalice.test.Client; every answer is held to the contract before a test sees it."""

    def __init__(self, client: Any, contract: Contract):
        self.client = client
        self.contract = contract

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        url = path if path.startswith(("/health", "/openapi.json", "/readyz")) else PREFIX + path
        payload = json.dumps(body) if body is not None else None
        headers = {"content-type": "application/json", **(headers or {})}
        response = self.client.http.request(method, url, headers=headers, body=payload)
        content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type")
        data = self.contract.check(method, url, response.status_code, response.body, content_type)
        return response.status_code, data

    def get(self, path: str) -> tuple[int, Any]:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return self.call("POST", path, body if body is not None else {}, headers)

    def until(self, path: str, ready: Any, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.get(path)
            if status == 200 and ready(body):
                return body
            assert time.monotonic() < deadline, f"{path} never got there: {body}"
            time.sleep(0.1)

    def task(self, instance_id: str, step: str) -> dict[str, Any]:
        page = self.until(f"/tasks?instance_id={instance_id}",
                          lambda p: any(t["step_name"] == step and t["status"] == "pending" for t in p["items"]))
        return next(t for t in page["items"] if t["step_name"] == step and t["status"] == "pending")


@pytest.fixture
def checked(api):
    spec = json.loads(api.client.http.get("/openapi.json").body)
    return Checked(api.client, Contract(spec))


def ended(body: dict[str, Any]) -> bool:
    return body["status"] in ("completed", "failed", "canceled")


def definitions_and_catalog(api: Checked) -> None:
    assert api.get("/health")[0] == 200 and api.get("/openapi.json")[0] == 200
    assert api.get("/healthz")[0] == 200 and api.get("/readyz")[0] == 200
    status, verdict = api.post("/definitions/validate", TOUR)
    assert status == 200 and verdict["valid"] and verdict["asl"]["StartAt"]
    status, verdict = api.post("/definitions/validate", {**TOUR, "steps": [{"id": "x", "type": "machine",
                                                                           "task_type": "no.such"}]})
    assert status == 200 and not verdict["valid"] and verdict["issues"] and verdict["asl"] is None
    assert api.post("/definitions", {"name": "bad", "steps": []})[0] == 422
    assert api.post("/definitions", TOUR)[0] == 201
    status, again = api.post("/definitions", TOUR)
    assert status == 200 and again["definition"]["name"] == "contract_tour"
    assert api.post("/definitions", QUICK)[0] == 201
    assert {d["name"] for d in api.get("/definitions")[1]} >= {"contract_tour", "contract_quick"}
    assert api.get("/definitions/contract_tour?version=1.0.0")[1]["state_machine_arn"]
    assert api.get("/definitions/contract_tour/asl")[1]["States"]
    assert api.get("/definitions/contract_tour/graph")[1]["mermaid_source"].startswith("flowchart")
    assert "mermaid_source" not in api.get("/definitions/contract_tour/graph?graph_format=json")[1]
    assert api.get("/definitions/nothing_here")[0] == 404
    status, refused = api.call("POST", "/instances", {}, {"content-type": "text/plain"})
    assert status == 415 and set(refused) == {"detail"} and "text/plain" in refused["detail"], refused
    plugins = api.get("/plugins")[1]
    assert api.get(f"/plugins/{plugins[0]['id']}")[1] == plugins[0]
    assert sum(c["count"] for c in api.get("/plugins/categories")[1]) == len(plugins)


def credentials(api: Checked) -> None:
    status, created = api.call("POST", "/credentials", {"name": "contract_key", "value": "contract-value-0123",
                                                        "description": "for the tour"})
    assert status == 201 and created["name"] == "contract_key"
    assert api.get("/credentials")[1]["items"][0]["name"] == "contract_key"
    assert api.get("/credentials/contract_key")[1]["description"] == "for the tour"
    assert api.call("PUT", "/credentials/contract_key", {"value": "contract-value-4567"})[0] == 200
    assert api.call("DELETE", "/credentials/contract_key")[1]["deleted"] is True


def definition_lifecycle(api: Checked) -> None:
    changed = {**QUICK, "name": "contract_life", "description": "v2"}
    assert api.call("PUT", "/definitions/contract_life", {**QUICK, "name": "contract_life"})[0] == 201
    assert api.call("PUT", "/definitions/contract_life", {**QUICK, "name": "contract_life"})[0] == 200
    assert api.call("PUT", "/definitions/contract_life", changed)[0] == 201
    assert [r["number"] for r in api.get("/definitions/contract_life/revisions")[1]] == [2, 1]
    assert api.get("/definitions/contract_life/revisions/1")[1]["asl"]["StartAt"] == "check"
    assert api.get("/definitions/contract_life/revisions/1/diff?to=2")[1]["structural"]["fields_changed"] == \
        ["description"]
    assert api.get("/definitions/contract_life?revision=1")[1]["revision_number"] == 1
    assert api.get("/definitions/contract_life?revision=9")[0] == 404
    assert api.call("PUT", "/definitions/contract_life/aliases/canary", {"routes": [
        {"revision": 1, "weight": 90}, {"revision": 2, "weight": 10}]})[1]["follows_latest"] is False
    assert [a["alias"] for a in api.get("/definitions/contract_life/aliases")[1]] == ["live", "canary"]
    assert api.get("/definitions/contract_life/aliases/live")[1]["routes"][0]["revision"] == 2
    status, pinned = api.post("/instances", {"definition_name": "contract_life", "revision": 1, "start": False})
    assert status == 201 and pinned["revision_number"] == 1 and pinned["alias"] is None
    assert api.post(f"/instances/{pinned['id']}/cancel")[1]["status"] == "canceled"  # the purge below needs none open
    assert api.post("/definitions/contract_life/revisions/1/restore")[0] == 201
    assert api.post("/definitions/contract_life/revisions/3/restore")[0] == 200
    document = api.get("/definitions/contract_life/export?history=true")[1]
    assert api.post("/definitions/import", document)[1]["revisions_created"] == 0
    assert api.call("DELETE", "/definitions/contract_life")[1]["active"] is False
    assert api.post("/instances", {"definition_name": "contract_life"})[0] == 409
    assert api.call("DELETE", "/definitions/contract_life?purge=true")[1]["purged"] is True
    assert api.post("/definitions/import", document)[1]["revisions_created"] == 3


def schedules(api: Checked) -> None:
    assert api.call("PUT", "/definitions/contract_sched", {**QUICK, "name": "contract_sched"})[0] == 201
    status, made = api.post("/definitions/contract_sched/schedules", {
        "expression": "cron(0 9 ? * MON-FRI *)", "timezone": "Europe/Paris", "input": {"a": 1}, "revision": 1})
    assert status == 201 and len(made["next_runs"]) == 5
    path = f"/definitions/contract_sched/schedules/{made['id']}"
    assert api.get("/definitions/contract_sched/schedules")[1] == [made]
    assert api.get(f"{path}?next=2")[1]["next_runs"] == made["next_runs"][:2]
    assert api.call("PUT", path, {"overlap": "allow", "description": "weekdays"})[1]["overlap"] == "allow"
    assert api.post(f"{path}/pause")[1]["state"] == "paused"
    assert api.post(f"{path}/resume")[1]["state"] == "enabled"
    runs = api.post(f"{path}/backfill", {"from": "2026-01-05T08:00:00Z", "to": "2026-01-05T08:00:00Z"})[1]["runs"]
    assert [r["outcome"] for r in runs] == ["started"]
    assert api.call("DELETE", path)[1] == {"id": made["id"], "deleted": True}


def tasks_and_webhooks(api: Checked) -> None:
    status, started = api.post("/instances", {"definition_name": "contract_tour", "input_data": {"requester": "ann"},
                                              "correlation_id": "tour-1"}, {"Idempotency-Key": "tour-1"})
    assert status == 201 and started["status"] == "running"
    status, repeat = api.post("/instances", {"definition_name": "contract_tour", "input_data": {"requester": "ann"},
                                             "correlation_id": "tour-1"}, {"Idempotency-Key": "tour-1"})
    assert status == 200 and repeat["id"] == started["id"]
    instance_id = started["id"]
    assert api.get(f"/instances/{instance_id}/result")[0] == 202
    review = api.task(instance_id, "review")
    assert api.get("/tasks?assignee_group=reviewers")[1]["items"][0]["id"] == review["id"]
    assert api.get("/tasks/metrics")[1]["pending_by_group"] == {"reviewers": 1}
    assert api.get(f"/tasks/{review['id']}")[1]["form_schema"]["required"] == ["approved"]
    assert api.post(f"/tasks/{review['id']}/claim", {"user": "ann"})[1]["claimed_by"] == "ann"
    assert api.post(f"/tasks/{review['id']}/unclaim", {"user": "ann"})[1]["assignee"] is None
    assert api.post(f"/tasks/{review['id']}/reassign", {"new_assignee": "bo", "reason": "away"})[1]["assignee"] == "bo"
    assert api.get(f"/approvals/{review['id']}")[1]["step_name"] == "review"
    assert api.post(f"/tasks/{review['id']}/complete", {"output_data": {"approved": "yes"}, "completed_by": "bo"})[0] \
        == 422
    status, done = api.post(f"/approvals/{review['id']}/approve", {"decided_by": "bo", "comment": "fine"})
    assert status == 200 and done["status"] == "completed"
    assert done["output_data"] == {"approved": True, "comments": "fine"}
    assert api.post(f"/approvals/{review['id']}/reject", {"decided_by": "bo"})[0] == 409

    confirm, ship = api.task(instance_id, "confirm"), api.task(instance_id, "ship")
    assert api.get(f"/tasks/{confirm['id']}")[1]["event_type"] == "confirmed"
    callback = api.get(f"/tasks/{confirm['id']}/callback")[1]
    key = callback["callback_url"].rsplit("/", 1)[1]
    status, accepted = api.post(f"/callbacks/{key}", {"reference": "c-1"})
    assert status == 200 and accepted == {"task_id": confirm["id"], "step_name": "confirm", "status": "completed",
                                          "completed_at": accepted["completed_at"]}
    assert api.post(f"/callbacks/{key}", {})[0] == 404
    status, sent = api.post(f"/instances/{instance_id}/events", {"event_type": "shipped", "data": {"box": 3}})
    assert status == 202 and [t["id"] for t in sent["completed"]] == [ship["id"]]
    status, kept = api.post("/events", {"type": "contract.ping", "correlation_key": "c-1", "data": {"n": 1}})
    assert status == 202 and kept["status"] == "kept"

    instance = api.until(f"/instances/{instance_id}", ended)
    assert instance["status"] == "completed" and instance["progress"]["percent"] == 100
    assert "output" not in api.get(f"/instances/{instance_id}?include_outputs=false")[1]["step_history"][0]
    status, result = api.get(f"/instances/{instance_id}/result")
    assert status == 200 and result["result"]["requester"] == "ann"
    graph = api.get(f"/instances/{instance_id}/graph?graph_format=json")[1]
    assert {n["state"] for n in graph["nodes"]} == {"completed"}
    history = api.get(f"/instances/{instance_id}/history?limit=2")[1]
    assert len(history["events"]) == 2 and history["next_cursor"]
    assert api.get(f"/instances/{instance_id}/history?limit=2&cursor={history['next_cursor']}")[1]["events"]
    assert [t["status"] for t in api.get(f"/tasks?instance_id={instance_id}")[1]["items"]] == ["completed"] * 3
    assert api.get("/tasks/no-such-task")[0] == 404


def failures_and_control(api: Checked) -> None:
    status, quick = api.post("/definitions/contract_quick/run", {"input_data": {"ok": True}, "wait_seconds": 25})
    assert status == 200 and quick["status"] == "completed"
    status, continued = api.post(f"/instances/{quick['id']}/continue", {"input_data": {"ok": True}})
    assert status == 201 and continued["continued_from"] == quick["id"]
    status, failed = api.post("/definitions/contract_quick/run", {"input_data": {"ok": False}, "wait_seconds": 25})
    assert status == 200 and failed["status"] == "failed" and failed["error"]["error"]
    instance = api.get(f"/instances/{failed['id']}")[1]
    assert instance["error"] == failed["error"] and instance["step_history"][0]["status"] == "failed"
    status, retried = api.post(f"/instances/{failed['id']}/retry")
    assert status == 201 and retried["retry_of"] == failed["id"]
    assert api.until(f"/instances/{retried['id']}", ended)["status"] == "failed"
    assert api.post(f"/instances/{failed['id']}/resume")[0] == 200
    assert api.until(f"/instances/{failed['id']}", ended)["runs"][-1]["kind"] in ("redrive", "resume")

    status, running = api.post("/definitions/contract_tour/run", {"wait_seconds": 0})
    assert status == 202 and running["result_url"].endswith("/result")
    status, rejected = api.post(f"/approvals/{api.task(running['id'], 'review')['id']}/reject", {"decided_by": "cy"})
    assert status == 200 and rejected["output_data"] == {"approved": False}
    status, linked = api.post("/definitions/contract_tour/run", {"wait_seconds": 0})
    status, minted = api.post(f"/tasks/{api.task(linked['id'], 'review')['id']}/links", {"decider": "cy"})
    assert status == 201 and set(minted["links"]) == {"approve", "reject"}
    status, decided = api.post(minted["links"]["reject"].removeprefix(PREFIX), {})
    assert status == 200 and decided["task"]["output_data"] == {"approved": False}
    assert api.post(minted["links"]["approve"].removeprefix(PREFIX), {})[0] == 409
    assert api.post(f"/instances/{linked['id']}/cancel", {})[1]["status"] == "canceled"
    status, away = api.call("PUT", "/users/cy/out-of-office", {"delegate": "bo", "until": "2099-01-01T00:00:00Z",
                                                               "reason": "holiday"})
    assert status == 200 and away["delegate"] == "bo" and away["until"] == "2099-01-01T00:00:00.000Z"
    assert api.get("/users/cy/out-of-office")[1] == away
    assert api.call("DELETE", "/users/cy/out-of-office")[1] == {"user": "cy", "deleted": True}
    assert api.get("/users/cy/out-of-office")[0] == 404
    assert api.post(f"/instances/{running['id']}/cancel", {"reason": "done with it"})[1]["status"] == "canceled"
    status, pending = api.post("/instances", {"definition_name": "contract_tour", "start": False})
    assert status == 201 and pending["status"] == "pending"
    status, doomed = api.post("/instances", {"definition_name": "contract_tour", "start": False})
    assert api.post(f"/instances/{doomed['id']}/cancel?purge=true")[1]["purged"] is True
    assert api.post(f"/instances/{pending['id']}/start")[1]["status"] in ("running", "waiting")
    status, completed = api.post(f"/tasks/{api.task(pending['id'], 'review')['id']}/complete",
                                 {"output_data": {"approved": True}, "completed_by": "cy", "comment": "ok"})
    assert status == 200 and completed["completed_by"] == "cy" and completed["comment"] == "ok"
    assert api.post(f"/instances/{pending['id']}/cancel")[1]["cancel_reason"] == "canceled"
    assert api.call("DELETE", f"/instances/{pending['id']}")[1] == {"id": pending["id"], "deleted": True}
    assert api.call("DELETE", f"/instances/{running['id']}?purge=true")[1] == {"id": running["id"], "purged": True}
    assert api.get(f"/instances/{running['id']}")[0] == 404
    first = api.get("/instances?limit=1")[1]
    assert first["next_cursor"] and api.get(f"/instances?limit=1&cursor={first['next_cursor']}")[1]["items"]


def triggers_and_hooks(api: Checked) -> None:
    from tests.integration.test_triggers import stepflow_headers

    status, created = api.post("/definitions/contract_quick/triggers", {"description": "tour", "rate_limit_per_minute": 5})
    assert status == 201 and created["secret"]
    base = f"/definitions/contract_quick/triggers/{created['id']}"
    assert [t["id"] for t in api.get("/definitions/contract_quick/triggers")[1]] == [created["id"]]
    assert api.get(base)[1]["enabled"] is True
    assert api.post(f"{base}/disable")[1]["enabled"] is False
    assert api.post(f"{base}/enable")[1]["enabled"] is True
    status, rotated = api.post(f"{base}/rotate", {"overlap_seconds": 0})
    assert status == 200 and rotated["secret"] != created["secret"]
    hook = created["url"].removeprefix(PREFIX)
    data = {"input_data": {"ok": True}}
    signed = stepflow_headers(rotated["secret"], json.dumps(data).encode())
    status, started = api.post(hook, data, {**signed, "Idempotency-Key": "tour-hook"})
    assert status == 201 and started["created"] is True
    again = stepflow_headers(rotated["secret"], json.dumps(data).encode(), at=int(signed["X-Stepflow-Timestamp"]) - 1)
    status, repeat = api.post(hook, data, {**again, "Idempotency-Key": "tour-hook"})
    assert status == 200 and repeat["instance_id"] == started["instance_id"]
    assert api.post(hook, data, signed)[0] == 401  # the first delivery again: a replay
    assert api.call("DELETE", base)[1] == {"id": created["id"], "deleted": True}
    assert api.post(hook, data, again)[0] == 404
def key_value_store(api: Checked) -> None:
    status, created = api.call("PUT", "/kv/carts/c-1", {"value": {"items": [1]}, "ttl_seconds": 600})
    assert status == 201 and created["expires_at"]
    assert api.call("PUT", "/kv/carts/c-1", {"value": 2}, {"If-Match": '"1"'})[0] == 200
    assert api.call("PUT", "/kv/carts/c-1", {"value": 3}, {"If-Match": '"1"'})[0] == 412
    assert api.call("PUT", "/kv/carts/c-1", {"value": 3}, {"If-None-Match": "*"})[0] == 412
    assert api.call("PUT", "/kv/carts/c-2", {"value": 4, "ttl_seconds": -1})[0] == 422
    assert api.get("/kv/carts/c-1")[1]["value"] == 2
    assert api.call("PUT", "/kv/carts/c-3", {"value": None})[0] == 201
    page = api.get("/kv/carts?limit=1&prefix=c-")[1]
    assert page["next_cursor"] and api.get(f"/kv/carts?limit=1&cursor={page['next_cursor']}&prefix=c-")[1]["items"]
    assert api.get("/kv/carts?cursor=nope")[0] == 400
    assert api.call("DELETE", "/kv/carts/c-1", None, {"If-Match": '"1"'})[0] == 412
    assert api.call("DELETE", "/kv/carts/c-1")[1]["version"] == 2
    assert api.get("/kv/carts/c-1")[0] == 404


def audit_log(api: Checked) -> None:
    status, page = api.get("/audit?limit=5")
    assert status == 200 and len(page["items"]) == 5 and page["next_cursor"]
    assert api.get("/audit?operation=put_kv_entry")[1]["items"][0]["target"].startswith("kv/carts/")


def test_every_answer_of_a_tour_of_the_api_is_the_documented_one(checked):
    definitions_and_catalog(checked)
    definition_lifecycle(checked)
    schedules(checked)
    tasks_and_webhooks(checked)
    failures_and_control(checked)
    triggers_and_hooks(checked)
    credentials(checked)
    key_value_store(checked)
    audit_log(checked)
    spec = checked.contract.spec
    declared = {(method.upper(), path, code) for path, ops in spec["paths"].items() for method, op in ops.items()
                for code, response in op["responses"].items()
                if code.startswith("2") and "application/json" in response.get("content", {})}
    assert declared - checked.contract.seen == set()


def test_the_check_refuses_an_answer_the_document_does_not_describe():
    import app as app_module
    from chalicelib.api.openapi import build

    contract = Contract(build(app_module.app, app_module.services.settings))
    health = json.dumps({"status": "healthy", "stage": "local"})
    assert contract.check("GET", "/health", 200, health, "application/json")["stage"] == "local"
    with pytest.raises(AssertionError, match="breaks the contract"):
        contract.check("GET", "/health", 200, json.dumps({"status": "healthy"}), "application/json")
    with pytest.raises(AssertionError, match="breaks the contract"):
        contract.check("GET", "/health", 200, json.dumps({"status": "fine", "stage": "x"}), "application/json")
    with pytest.raises(AssertionError, match="does not declare"):
        contract.check("GET", "/health", 201, health, "application/json")
    page = {"items": [{"id": "t1"}], "limit": 20, "next_cursor": None}
    with pytest.raises(AssertionError, match="breaks the contract"):
        contract.check("GET", "/workflows/tasks", 200, json.dumps(page), "application/json")
    assert contract.template("GET", "/workflows/tasks/metrics") == "/workflows/tasks/metrics"
