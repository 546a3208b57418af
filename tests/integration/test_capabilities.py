"""Capabilities only for those who may use them: callback keys never reach viewers, keys die with their
step, and page cursors are sealed to the tenant and query they were issued for (auth on, through HTTP)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import pytest

from tests.auth_on import authentication
from tests.integration.test_auth import FOREIGN, OWN, SECRET, Caller, token

HOOK = {"name": "acme_hook", "version": "1.0.0",
        "steps": [{"id": "reply", "type": "webhook", "event_type": "reply.sent"}]}
GATE = {"name": "acme_pending", "version": "1.0.0",
        "steps": [{"id": "review", "type": "human", "title": "Review"}]}


@pytest.fixture
def call(api):
    with authentication(SECRET):
        yield Caller(api)


def register_and_start(call, definition: dict[str, Any], tenant: str = OWN) -> str:
    status, body = call("POST", "/definitions", definition, token("editor", tenant))
    assert status in (200, 201), body
    status, started = call("POST", "/instances", {"definition_name": definition["name"]}, token("executor", tenant))
    assert status == 201, started
    return started["id"]


def wait_for(check, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def the_task(call, instance_id: str, tenant: str = OWN) -> dict[str, Any]:
    def found():
        status, page = call("GET", f"/tasks?instance_id={instance_id}", bearer=token("viewer", tenant))
        assert status == 200, page
        return page["items"][0] if page["items"] else None

    return wait_for(found, "the task")


def callback_post(call, url: str, data: dict[str, Any]) -> tuple[int, Any]:
    return call("POST", url, data, raw_path=True)


def test_viewers_never_see_callback_keys_and_whoever_may_act_reads_them_deliberately(call, local_aws):
    instance_id = register_and_start(call, HOOK)
    task = the_task(call, instance_id)
    viewer, executor = token("viewer"), token("executor")

    # The deliberate read: executor and up, own tenant, who may work the task.
    assert call("GET", f"/tasks/{task['id']}/callback", bearer=viewer)[0] == 403
    assert call("GET", f"/tasks/{task['id']}/callback", bearer=token("executor", FOREIGN))[0] == 404
    status, read = call("GET", f"/tasks/{task['id']}/callback", bearer=executor)
    assert status == 200, read
    url = read["callback_url"]
    key = url.rsplit("/", 1)[-1]
    assert url == f"/workflows/callbacks/{key}" and len(key) >= 43
    assert read["task_id"] == task["id"] and read["event_type"] == "reply.sent" and read["status"] == "pending"
    assert call("GET", f"/tasks/{task['id']}/callback", bearer=token("admin"))[1]["callback_url"] == url

    # Everything a viewer reads: task detail and list, instance detail, the event log as NDJSON and SSE.
    seen_by_viewer: list[str] = []

    def read_as_viewer(path: str) -> Any:
        status, body = call("GET", path, bearer=viewer)
        assert status == 200, (path, body)
        seen_by_viewer.append(call.seen[-1])
        return body

    detail = read_as_viewer(f"/tasks/{task['id']}")
    assert detail["kind"] == "webhook" and detail["event_type"] == "reply.sent"
    assert "callback_url" not in detail and "callback_key" not in detail and "callback_nonce" not in detail
    read_as_viewer(f"/tasks?instance_id={instance_id}")
    read_as_viewer("/tasks")
    read_as_viewer(f"/instances/{instance_id}")
    wait_for(lambda: "task.created" in read_as_viewer(f"/instances/{instance_id}/events"), "task.created")
    sse = read_as_viewer(f"/instances/{instance_id}/events?sse=true")
    assert "task.created" in sse
    for text in seen_by_viewer:
        assert key not in text and "/callbacks/" not in text
    created = next(json.loads(line) for line in seen_by_viewer[-2].splitlines()
                   if json.loads(line)["type"] == "task.created")
    assert "callback_url" not in created["data"] and created["data"]["task_id"] == task["id"]

    # The table holds a hash of the key and a nonce, not the key: reading it hands out no URL.
    tasks_table = local_aws.table_names["tasks"]
    item = local_aws.client("dynamodb").get_item(TableName=tasks_table, Key={"id": {"S": task["id"]}})["Item"]
    assert key not in json.dumps(item)
    assert item["callback_key"]["S"] == hashlib.sha256(key.encode()).hexdigest()
    assert callback_post(call, "/workflows/callbacks/" + item["callback_key"]["S"], {})[0] == 404  # the hash is no key

    # Single use: the key completes the step once, then it is dead (gone from the index and the record).
    status, answer = callback_post(call, url, {"answer": "yes"})
    assert status == 200 and answer["status"] == "completed", answer
    assert callback_post(call, url, {"answer": "again"})[0] == 404
    status, body = call("GET", f"/tasks/{task['id']}/callback", bearer=executor)
    assert status == 409 and "completed" in body["detail"]
    item = local_aws.client("dynamodb").get_item(TableName=tasks_table, Key={"id": {"S": task["id"]}})["Item"]
    assert "callback_key" not in item and "callback_nonce" not in item


def test_a_canceled_step_s_key_dies_with_it(call, local_aws):
    instance_id = register_and_start(call, HOOK)
    task = the_task(call, instance_id)
    executor = token("executor")
    url = call("GET", f"/tasks/{task['id']}/callback", bearer=executor)[1]["callback_url"]
    assert call("POST", f"/instances/{instance_id}/cancel", {}, executor)[0] == 200
    wait_for(lambda: call("GET", f"/tasks/{task['id']}", bearer=executor)[1]["status"] == "canceled", "cancel")
    assert callback_post(call, url, {"late": True})[0] == 404
    assert call("GET", f"/tasks/{task['id']}/callback", bearer=executor)[0] == 410


def _cursor_bytes(cursor: str) -> bytes:
    body = cursor.split(".", 1)[1]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def test_cursors_are_sealed_to_their_tenant_and_query(call):
    # Pending tasks of both tenants share the by_status index.
    foreign = [the_task(call, register_and_start(call, {**GATE, "name": "globex_pending"}, FOREIGN), FOREIGN)]
    own = [the_task(call, register_and_start(call, GATE)) for _ in range(2)]
    foreign.append(the_task(call, register_and_start(call, {**GATE, "name": "globex_pending"}, FOREIGN), FOREIGN))
    viewer, stranger = token("viewer"), token("viewer", FOREIGN)

    status, page = call("GET", "/tasks?status=pending&limit=1", bearer=viewer)
    assert status == 200 and page["next_cursor"], page
    cursor = page["next_cursor"]
    # Opaque: neither tenant's task ids can be read out of it.
    raw = _cursor_bytes(cursor)
    for task in own + foreign:
        assert task["id"].encode() not in raw and task["id"] not in cursor
    # The owner follows it; the other tenant, another query, or an altered cursor get 400.
    assert call("GET", f"/tasks?status=pending&limit=1&cursor={cursor}", bearer=viewer)[0] == 200
    status, body = call("GET", f"/tasks?status=pending&limit=1&cursor={cursor}", bearer=stranger)
    assert status == 400 and "another tenant" in body["detail"], body
    status, body = call("GET", f"/tasks?status=completed&limit=1&cursor={cursor}", bearer=viewer)
    assert status == 400 and "different query" in body["detail"], body
    flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    status, body = call("GET", f"/tasks?status=pending&limit=1&cursor={flipped}", bearer=viewer)
    assert status == 400 and "not valid" in body["detail"], body
    for garbage in ("garbage", "c1.", "c1.!!!!", "c2." + cursor[3:], "x" * 3000):
        status, body = call("GET", f"/tasks?cursor={garbage}", bearer=viewer)
        assert status == 400 and body["detail"], (garbage, body)

    # Instances: the same rules.
    status, page = call("GET", "/instances?limit=1", bearer=viewer)
    assert status == 200 and page["next_cursor"], page
    cursor = page["next_cursor"]
    status, rest = call("GET", f"/instances?limit=1&cursor={cursor}", bearer=viewer)
    assert status == 200 and rest["items"] and rest["items"][0]["id"] != page["items"][0]["id"]
    status, body = call("GET", f"/instances?limit=1&cursor={cursor}", bearer=stranger)
    assert status == 400 and "another tenant" in body["detail"], body
    status, body = call("GET", f"/instances?limit=1&status=completed&cursor={cursor}", bearer=viewer)
    assert status == 400 and "different query" in body["detail"], body
    status, body = call("GET", f"/instances?limit=1&cursor={cursor[:-2]}", bearer=viewer)
    assert status == 400, body


def test_a_key_stored_before_keys_were_hashed_still_completes_its_step(call, local_aws):
    instance_id = register_and_start(call, HOOK)
    task = the_task(call, instance_id)
    ddb, table = local_aws.client("dynamodb"), local_aws.table_names["tasks"]
    legacy = "legacy-" + "k" * 40
    ddb.update_item(TableName=table, Key={"id": {"S": task["id"]}}, UpdateExpression="SET callback_key = :k "
                    "REMOVE callback_nonce", ExpressionAttributeValues={":k": {"S": legacy}})
    status, read = call("GET", f"/tasks/{task['id']}/callback", bearer=token("executor"))
    assert status == 200 and read["callback_url"] == f"/workflows/callbacks/{legacy}", read
    status, answer = callback_post(call, read["callback_url"], {"ok": True})
    assert status == 200 and answer["status"] == "completed", answer
    assert callback_post(call, read["callback_url"], {"ok": True})[0] == 404
