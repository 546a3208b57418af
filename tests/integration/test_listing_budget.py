"""Call budgets: every listing page is one DynamoDB query reading at most a page + 1 items, for every
filter combination the API offers; metrics are a constant number of calls whatever the number of tasks;
a combination no index serves is a 400 that reads nothing. Counted with botocore hooks on the app's
own DynamoDB client (chalicelib.aws.clients), so what is counted is what the service sends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.core.times import iso

LIMIT = 3


class Calls:
    """DynamoDB operations the app sends, and the items each query read (ScannedCount)."""

    def __init__(self) -> None:
        self.operations: list[str] = []
        self.read: list[int] = []
        self.limits: list[int] = []

    def before(self, model: Any, params: Any = None, **_: Any) -> None:
        self.operations.append(model.name)
        if model.name == "Query":  # the request as sent: DynamoDB speaks JSON
            self.limits.append(json.loads((params or {}).get("body") or b"{}").get("Limit"))

    def after(self, model: Any, parsed: Any = None, **_: Any) -> None:
        if model.name == "Query" and parsed:
            self.read.append(parsed.get("ScannedCount", parsed.get("Count", 0)))

    def reset(self) -> None:
        self.operations, self.read, self.limits = [], [], []


@pytest.fixture
def calls(api: Any, local_aws: Any) -> Iterator[Calls]:
    from chalicelib.aws.clients import client

    counter = Calls()
    events = client("dynamodb", local_aws.region).meta.events
    events.register("before-call.dynamodb", counter.before)
    events.register("after-call.dynamodb", counter.after)
    yield counter
    events.unregister("before-call.dynamodb", counter.before)
    events.unregister("after-call.dynamodb", counter.after)


def _seed_instances(api: Any) -> None:
    from tests.integration.test_lifecycle import pipeline

    pipeline(api)
    for i in range(12):
        status, body = api.post("/instances", {
            "definition_name": "image_pipeline", "input_data": {"prompt": str(i)}, "start": False,
            "tenant_id": "t1" if i % 3 else "t2", "user_id": f"u{i % 2}", "correlation_id": f"c{i}",
            "origin_instance": f"api-{i % 2}", "origin_tenant_id": f"ot{i % 3}"})
        assert status == 201, body


INSTANCE_QUERIES = [
    "", "status=pending", "workflow_name=image_pipeline", "workflow_name=image_pipeline&status=pending",
    "workflow_name=image_pipeline&status=failed", "created_by=u1", "created_by=u1&status=pending",
    "correlation_id=c1", "include_deleted=true", "include_deleted=true&status=pending",
    "include_deleted=true&workflow_name=image_pipeline", "include_deleted=true&created_by=u0",
    "include_deleted=true&correlation_id=c4", "started_after=2000-01-01T00:00:00Z",
    "workflow_name=image_pipeline&started_before=2999-01-01T00:00:00Z", "origin_instance=api-1",
    "origin_tenant_id=ot1", "origin_instance=api-0&started_after=2000-01-01T00:00:00Z",
]


def test_every_instance_listing_page_is_one_query_of_at_most_a_page_and_one(api, calls):
    _seed_instances(api)
    for query in INSTANCE_QUERIES:
        cursor = None
        pages = 0
        while True:
            calls.reset()
            url = f"/instances?tenant_id=t1&limit={LIMIT}&{query}" + (f"&cursor={cursor}" if cursor else "")
            status, page = api.get(url)
            assert status == 200, (query, page)
            assert calls.operations == ["Query"], (query, calls.operations)
            assert calls.limits == [LIMIT + 1] and calls.read[0] <= LIMIT + 1, (query, calls.read)
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert pages <= 12 // LIMIT + 1, query


def test_a_filter_combination_no_index_serves_is_refused_without_reading(api, calls):
    _seed_instances(api)
    for query in ("workflow_name=image_pipeline&created_by=u1", "correlation_id=c1&status=pending",
                  "include_deleted=true&workflow_name=image_pipeline&status=pending",
                  "origin_instance=api-1&status=pending", "origin_instance=api-1&origin_tenant_id=ot1",
                  "include_deleted=true&origin_tenant_id=ot1"):
        calls.reset()
        status, body = api.get(f"/instances?{query}")
        assert status == 400 and "Combinations that work" in body["detail"], body
        assert calls.operations == [], (query, calls.operations)
    calls.reset()
    status, body = api.get("/instances?limit=2&offset=5")
    assert status == 400 and "next_cursor" in body["detail"] and calls.operations == []
    for query in ("assignee_id=a&assignee_group=g", "instance_id=x&status=pending", "overdue=true&assignee_id=a",
                  "overdue=true&status=completed"):
        calls.reset()
        status, body = api.get(f"/tasks?{query}")
        assert status == 400 and "Combinations that work" in body["detail"], (query, body)
        assert calls.operations == []


def _task(i: int, now: datetime, **extra: Any) -> dict[str, Any]:
    record = {"id": f"budget{i:04d}", "instance_id": f"inst{i % 5}", "execution_arn": f"arn:x:inst{i % 5}",
              "workflow": "w", "revision": "r", "step_name": "review", "kind": "human", "title": "Review",
              "status": "pending", "created_at": iso(now + timedelta(seconds=i)), "attempt": 1, "token": f"tok{i}",
              "tenant_id": "t1" if i % 4 else "t2", "assignee": f"user{i % 3}", "assignee_group": f"g{i % 2}"}
    record.update(extra)
    return record


def _seed_tasks(store: Any, count: int, start: int = 0) -> None:
    now = datetime(2026, 1, 5, 9, tzinfo=UTC)
    for i in range(start, start + count):
        store.put(_task(i, now))


TASK_QUERIES = ["", "status=pending", "status=completed", "assignee_id=user1", "assignee_id=user1&status=pending",
                "assignee_group=g0", "assignee_group=g1&status=pending", "instance_id=inst2", "overdue=true",
                "completed_by=user1",
                "overdue=true&status=pending"]


def test_every_inbox_page_is_one_query_and_metrics_a_constant_few_calls(api, calls):
    import app as app_module

    store = app_module.services.task_store
    _seed_tasks(store, 24)
    for query in TASK_QUERIES:
        cursor = None
        while True:
            calls.reset()
            status, page = api.get(f"/tasks?tenant_id=t1&limit={LIMIT}&{query}"
                                   + (f"&cursor={cursor}" if cursor else ""))
            assert status == 200, (query, page)
            assert calls.operations == ["Query"], (query, calls.operations)
            assert calls.read[0] <= LIMIT + 1, (query, calls.read)
            assert all(t["tenant_id"] == "t1" for t in page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                break
    calls.reset()
    _, small = api.get("/tasks/metrics?tenant_id=t1")
    few = list(calls.operations)
    # The counters, the oldest due item, and the count of what is due but not yet swept (none here).
    assert few == ["GetItem", "Query", "Query"] and calls.limits == [1, None], few
    _seed_tasks(store, 40, start=100)
    calls.reset()
    _, large = api.get("/tasks/metrics?tenant_id=t1")
    assert calls.operations == few  # the same calls for 64 tasks as for 24
    assert small["pending_total"] == 18 and large["pending_total"] == 48
    assert large["pending_by_group"] == {"g0": 16, "g1": 32}  # g0: i % 4 == 2; g1: i odd


def _keys_in_step(store: Any, instance_id: str) -> dict[str, Any]:
    """The stored item's listing keys equal those derived from the item itself (none stale, none missing)."""
    from chalicelib.core.listing import INSTANCE_KEY_ATTRIBUTES, instance_keys

    record = store.get(instance_id)
    stored = {k: record.get(k) for k in INSTANCE_KEY_ATTRIBUTES}
    assert stored == instance_keys(record), record
    return record


def test_every_status_change_and_delete_keeps_the_listing_keys_in_step(api):
    import app as app_module
    from tests.integration.test_lifecycle import pipeline

    store = app_module.services.instance_store
    pipeline(api)
    _, created = api.post("/instances", {"definition_name": "image_pipeline", "input_data": {"prompt": "k"},
                                         "start": False, "tenant_id": "t9", "user_id": "ann"})
    assert _keys_in_step(store, created["id"])["lk_live_ws"] == "=t9#image_pipeline#pending"
    # A status write without the record at hand (as when a task opens): read, derived, pinned.
    _, other = api.post("/instances", {"definition_name": "image_pipeline", "input_data": {"prompt": "o"},
                                       "start": False, "tenant_id": "t9"})
    store.update(other["id"], {"status": "waiting"}, expect={"status": "pending"})
    assert _keys_in_step(store, other["id"])["lk_live_s"] == "=t9#waiting"
    # Pending instances run nothing, so no execution moves the status under the test.
    assert api.post(f"/instances/{created['id']}/cancel")[0] == 200
    assert _keys_in_step(store, created["id"])["lk_live_s"] == "=t9#canceled"
    # A writer holding a stale record (it read `running`): the write is re-derived on what is there.
    store.update(created["id"], {"deleted_at": "2026-01-01T00:00:00Z"}, record={**store.get(created["id"]),
                                                                                "status": "running"})
    deleted = _keys_in_step(store, created["id"])
    assert deleted.get("lk_live") is None and deleted["lk_all_s"] == "=t9#canceled"
    listed = api.get("/instances?tenant_id=t9&status=canceled&include_deleted=true")[1]["items"]
    assert [i["id"] for i in listed] == [created["id"]]
    assert api.get("/instances?tenant_id=t9&status=canceled")[1]["items"] == []


def test_a_candidate_group_finds_its_tasks_in_one_query_and_one_batch_read_per_page(api, calls):
    """A task is found by any of its candidate groups: a membership item per group other than the
    primary one, in the group index, so a page stays one query (and one read of the listed tasks)."""
    import app as app_module

    store = app_module.services.task_store
    now = datetime(2026, 1, 5, 9, tzinfo=UTC)
    for i in range(7):  # the auditors are a candidate group of every other task, the primary group of one
        groups = ["auditors", "finance"] if i % 2 == 0 else ["finance"]
        store.put(_task(200 + i, now, tenant_id="t1", assignee_group="auditors" if i == 1 else "managers",
                        candidate_groups=groups))
    expected = [f"budget{200 + i:04d}" for i in (6, 4, 2, 1, 0)]  # newest first
    listed, cursor = [], None
    while True:
        calls.reset()
        status, page = api.get("/tasks?tenant_id=t1&assignee_group=auditors&limit=2"
                               + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, page
        assert calls.operations in (["Query"], ["Query", "BatchGetItem"]), calls.operations
        assert calls.read[0] <= 3
        listed += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert listed == expected
    # A listed task is its detail view; a task that closes moves to the group's list of its status.
    view = api.get(f"/tasks/{expected[0]}")[1]
    assert api.get("/tasks?tenant_id=t1&assignee_group=auditors&limit=1")[1]["items"] == [view]
    record = store.get(expected[0])
    store.transition(expected[0], before=record, after={**record, "status": "completed"},
                     expect={"status": "pending"}, set_={"status": "completed"})
    pending = [t["id"] for t in api.get("/tasks?tenant_id=t1&assignee_group=auditors")[1]["items"]]
    done = [t["id"] for t in api.get("/tasks?tenant_id=t1&assignee_group=auditors&status=completed")[1]["items"]]
    assert pending == expected[1:] and done == [expected[0]]
    # Purged, a task takes its membership items with it.
    store.delete(expected[1])
    assert [t["id"] for t in api.get("/tasks?tenant_id=t1&assignee_group=auditors")[1]["items"]] == expected[2:]
    from chalicelib.core.listing import MEMBER_PREFIX

    assert store.get(f"{MEMBER_PREFIX}{expected[1]}#auditors") is None
