"""Listings read only the attributes their view shows (ProjectionExpression), and show exactly what the
detail views show: a listed task is its GET /tasks/{id} view through its whole life, a listed instance
is the head of its GET /instances/{id} view; paging through the projected pages finds every item once.
The service-level tests run on both stores (the LocalRuntime's moto and DynamoDB Local)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.aws.instance_store import InstanceStore
from chalicelib.aws.task_store import TaskStore
from chalicelib.core.listing import instance_index, task_index
from chalicelib.core.times import iso
from chalicelib.resources import INSTANCES, TASKS
from chalicelib.service.instance_views import BRIEF_FIELDS, brief
from chalicelib.service.tasks import TaskService
from tests.integration.test_human_tasks import start_expense
from tests.waiting import wait_for_task

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TENANT = "acme"
_tables = itertools.count()
# Stored on every task and instance below, never shown by a listing: a listing must not read them.
UNSHOWN_TASK = {"snapshot", "token", "callback_nonce", "callback_key", "created_key", "tk_s", "tk_a", "tk_g", "tk_i",
                "tk_c"}
UNSHOWN_INSTANCE = {"input", "output", "context", "runs", "created_key"}


class Reads:
    """The attribute names of every item the client's queries returned."""

    def __init__(self, client: Any):
        self.names: set[str] = set()
        client.meta.events.register("after-call.dynamodb.Query", self._after)

    def _after(self, parsed: Any = None, **_: Any) -> None:
        for item in (parsed or {}).get("Items", []):
            self.names |= item.keys()


class Machines:
    def __init__(self) -> None:
        self.successes: list[tuple[str, Any]] = []

    def send_success(self, token: str, output: Any) -> None:
        self.successes.append((token, output))

    def send_failure(self, token: str, error: str, cause: str) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def tasks(ddb):
    name = f"tasks_projection_{next(_tables)}"
    ddb.create_table(**TASKS.create_table_request(name))
    store, clock = TaskStore(ddb, name), Clock()
    loader = SimpleNamespace(load=lambda workflow, revision: SimpleNamespace(order=("submit", "review")))
    publisher = SimpleNamespace(publish=lambda kind, detail: None)
    service = TaskService(store, Machines(), loader, publisher, clock)
    return SimpleNamespace(store=store, clock=clock, service=service, reads=Reads(ddb))


def _task(i: int, **extra: Any) -> dict[str, Any]:
    record = {"id": f"task{i}", "instance_id": f"inst{i}", "execution_arn": f"arn:exec:inst{i}", "workflow": "w",
              "revision": "r1", "step_name": "review", "kind": "human", "title": f"Review {i}", "description": "Look",
              "status": "pending", "created_at": iso(T0 + timedelta(seconds=i)), "attempt": 1, "token": f"token-{i}",
              "tenant_id": TENANT, "assignee_group": "reviewers", "candidate_groups": ["reviewers", "leads"],
              "priority": "high", "output_namespace": None, "overwrites": ["approved"],
              "snapshot": {"input": {"amount": i}, "steps": {"submit": {"ok": True}}},
              "form_schema": {"type": "object", "properties": {"approved": {"type": "boolean"}}}}
    record.update(extra)
    return record


def _listed(service: TaskService, **filters: Any) -> list[dict[str, Any]]:
    """Every page of one listing, two items a page (so every page but the last continues by cursor)."""
    items: list[dict[str, Any]] = []
    start = None
    while True:
        page = service.list(tenant=TENANT, limit=2, start=start, **filters)
        items += page["items"]
        start = page["next_cursor"]
        if not start:
            return items


def _check_every_listing(world: Any) -> None:
    """Each listing pages through exactly the tasks its index holds, each as its detail view shows it."""
    listings = [{"status": s} for s in ("pending", "completed", "canceled", "expired")]
    listings += [{"assignee_id": who, "status": "pending"} for who in ("bob", "cy", "ann")]
    listings += [{"assignee_group": g, "status": "pending"} for g in ("reviewers", "leads")]
    listings += [{"instance_id": f"inst{i}"} for i in range(1, 5)] + [{"overdue": True}]
    listings += [{"completed_by": who} for who in ("cy", "ann")]
    seen = set()
    for filters in listings:
        world.reads.names.clear()
        listed = _listed(world.service, **filters)
        assert not world.reads.names & UNSHOWN_TASK, (filters, world.reads.names & UNSHOWN_TASK)
        family, value = task_index({"status": filters.get("status"), "assignee": filters.get("assignee_id"),
                                    "assignee_group": filters.get("assignee_group"),
                                    "instance_id": filters.get("instance_id"),
                                    "completed_by": filters.get("completed_by")},
                                   tenant=TENANT, overdue=filters.get("overdue", False))
        # Every attribute, one page; the overdue list is the part of its index due by the clock's now.
        upto = ("due_at", iso(world.clock())) if filters.get("overdue") else None
        stored, _ = world.store.query(family.index, family.attribute, value, upto=upto)
        # A candidate group's membership item (core/listing.py memberships) lists its task.
        assert [t["id"] for t in listed] == [t.get("task_id") or t["id"] for t in stored], filters
        for item in listed:
            assert item == world.service.view(item["id"]), filters
        seen |= {t["id"] for t in listed}
    assert seen == {f"task{i}" for i in range(1, 5)}


def test_a_listed_task_is_its_detail_view_through_its_life(tasks):
    world = tasks
    world.store.put(_task(1, due_at=iso(T0 + timedelta(hours=1)), reminder_at=iso(T0 + timedelta(minutes=30)),
                          escalation={"action": "reassign", "assignee_group": "leads"}))
    world.store.put(_task(2, kind="webhook", event_type="payment.received", assignee_group=None,
                          candidate_groups=[], form_schema=None, callback_nonce="n" * 32, callback_key="k" * 64))
    world.store.put(_task(3, assignee="ann"))
    world.store.put(_task(4, assignee="ann"))
    _check_every_listing(world)

    world.service.claim("task1", "bob")
    world.service.reassign("task3", "cy", "ann is away", "lead")
    _check_every_listing(world)

    world.clock.now = T0 + timedelta(minutes=31)
    assert world.service.sweep()["reminded"] == 1
    # Past its due date, not yet escalated: a page judges overdue by the clock, as the detail view does.
    world.clock.now = T0 + timedelta(minutes=61)
    assert {t["id"]: t["overdue"] for t in _listed(world.service, status="pending")} == {
        "task1": True, "task2": False, "task3": False, "task4": False}
    _check_every_listing(world)
    world.clock.now = T0 + timedelta(hours=2)
    assert world.service.sweep()["escalated"] == 1
    assert world.service.view("task1")["overdue"] and world.service.view("task1")["escalated_at"]
    # The escalation and the reassignment each join their task's assignment trail.
    [escalated] = world.service.view("task1")["assignments"]
    assert (escalated["action"], escalated["by"], escalated["to"]["group"]) == ("escalated", "stepflow:escalation", "leads")
    assert [a["reason"] for a in world.service.view("task3")["assignments"]] == ["ann is away"]
    _check_every_listing(world)

    world.service.complete("task3", {"approved": True}, "cy", "fine")
    assert world.service.close_for_instance("inst4", "canceled", "instance canceled") == 1
    assert world.store.get("task4")["closed_reason"] == "instance canceled"
    _check_every_listing(world)
    # The bookkeeping the detail view passes through is in the listed items too.
    [listed] = [t for t in _listed(world.service, status="canceled")]
    assert listed["closed_at"] and listed["closed_reason"] == "instance canceled" and listed["revision"] == "r1"
    [reassigned] = _listed(world.service, status="completed")
    assert reassigned["reassigned_by"] == "lead" and reassigned["output_data"] == {"approved": True}


def test_instance_pages_read_only_the_brief_fields_and_page_as_before(ddb):
    name = f"instances_projection_{next(_tables)}"
    ddb.create_table(**INSTANCES.create_table_request(name))
    store, reads = InstanceStore(ddb, name), Reads(ddb)
    for i in range(7):
        store.create({"id": f"inst-{i}", "definition_name": "w", "version": "1.0.0", "revision": "r1",
                      "status": "running", "created_at": iso(T0 + timedelta(minutes=i)), "created_by": "alice",
                      "tenant_id": TENANT, "correlation_id": f"c{i}", "input": {"amount": i},
                      "output": {"ok": i}, "context": {"big": "x" * 100}, "runs": [{"kind": "start"}]})
    store.update("inst-3", {"status": "completed", "completed_at": iso(T0 + timedelta(hours=1))})
    for filters, window, count in (({}, {}, 7), ({"status": "running"}, {}, 6),
                                   ({}, {"started_after": iso(T0 + timedelta(minutes=2))}, 5)):
        family, value = instance_index(filters, tenant=TENANT, include_deleted=False)
        pages: dict[bool, list[tuple[list[dict[str, Any]], Any]]] = {True: [], False: []}
        for projected in pages:
            start = None
            while True:
                items, start = store.page(family, value, limit=3, start=start, **window,
                                          attributes=BRIEF_FIELDS if projected else None)
                pages[projected].append((items, start))
                if not start:
                    break
        # The same items, pages and cursors; the projected items are exactly the listing's view.
        assert [c for _, c in pages[True]] == [c for _, c in pages[False]]
        assert [[brief(i) for i in p] for p, _ in pages[True]] == [[brief(i) for i in p] for p, _ in pages[False]]
        assert all(set(i) <= set(BRIEF_FIELDS) for p, _ in pages[True] for i in p)
        assert sum(len(p) for p, _ in pages[True]) == count and len(pages[True]) == -(-count // 3)
    assert UNSHOWN_INSTANCE <= reads.names  # read by the unprojected pages only
    reads.names.clear()
    family, value = instance_index({}, tenant=TENANT, include_deleted=False)
    store.page(family, value, limit=3, attributes=BRIEF_FIELDS)
    assert reads.names and not reads.names & UNSHOWN_INSTANCE


def test_listings_show_what_the_detail_views_show(api):
    """Through the API: a listed task is GET /tasks/{id}; a listed instance is the head of its detail."""
    instance_id = start_expense(api, 2500)
    task = wait_for_task(api, instance_id, "manager_approval")
    detail = api.wait(instance_id, until=("waiting",))  # the status the index holds settles on waiting
    assert detail["status"] == "waiting", detail
    shown = api.get(f"/tasks/{task['id']}")[1]
    for query in (f"instance_id={instance_id}", "assignee_id=bob", "assignee_group=managers"):
        status, page = api.get(f"/tasks?{query}&limit=100")  # other tests' tasks may be listed too
        assert status == 200 and [t for t in page["items"] if t["id"] == task["id"]] == [shown], query
    status, page = api.get("/instances?created_by=alice&limit=100")
    [listed] = [i for i in page["items"] if i["id"] == instance_id]
    assert list(listed) == list(BRIEF_FIELDS) and listed == {k: detail[k] for k in BRIEF_FIELDS}
