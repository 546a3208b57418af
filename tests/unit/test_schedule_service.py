"""The schedule service against in-memory fakes: the order of its writes to EventBridge Scheduler and to its
own store, so a failure in between converges."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.errors import Conflict, Unavailable
from chalicelib.service.schedules import ScheduleService

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Store:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.fail_next: type[Exception] | None = None
        self.before_replace: Any = None

    def _maybe_fail(self) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error("the store is down" if error is not Conflict else "changed")

    def get(self, name: str, schedule_id: str) -> dict[str, Any] | None:
        found = self.items.get((name, schedule_id))
        return copy.deepcopy(found) if found else None

    def create(self, record: dict[str, Any]) -> None:
        self._maybe_fail()
        self.items[(record["definition_name"], record["id"])] = copy.deepcopy(record)

    def replace(self, record: dict[str, Any], *, revision: int) -> None:
        self._maybe_fail()
        if self.before_replace is not None:
            self.before_replace()
        key = (record["definition_name"], record["id"])
        if key not in self.items or self.items[key]["row_version"] != revision:
            raise Conflict("changed")
        self.items[key] = copy.deepcopy(record)

    def delete(self, name: str, schedule_id: str) -> None:
        self.items.pop((name, schedule_id), None)

    def list(self, name: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(r) for (n, _), r in self.items.items() if n == name]

    def every(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(r) for r in self.items.values()]


class Scheduler:
    def __init__(self) -> None:
        self.schedules: dict[str, dict[str, Any]] = {}
        self.down = False

    def put(self, record: dict[str, Any]) -> None:
        if self.down:
            raise Unavailable("try again")
        self.schedules[record["id"]] = copy.deepcopy(record)

    def delete(self, schedule_id: str) -> None:
        if self.down:
            raise Unavailable("try again")
        self.schedules.pop(schedule_id, None)


class Definitions:
    def get(self, name: str) -> dict[str, Any]:
        return {"name": name}


def service() -> tuple[ScheduleService, Store, Scheduler]:
    store, scheduler = Store(), Scheduler()
    return ScheduleService(Definitions(), store, scheduler, None, None, lambda: NOW), store, scheduler


def test_a_create_cut_short_after_scheduler_leaves_a_schedule_that_deletes_itself_at_its_first_fire():
    schedules, store, scheduler = service()
    store.fail_next = RuntimeError
    with pytest.raises(RuntimeError):
        schedules.create("flow", {"expression": "rate(1 hour)"}, None, None)
    (orphan,) = scheduler.schedules
    assert store.items == {}
    assert schedules.fire("flow", orphan, "2026-01-05T10:00:00Z") == {"outcome": "gone"}
    assert scheduler.schedules == {}


def test_a_create_refused_by_scheduler_stores_nothing():
    schedules, store, scheduler = service()
    scheduler.down = True
    with pytest.raises(Unavailable):
        schedules.create("flow", {"expression": "rate(1 hour)"}, None, None)
    assert store.items == {} and scheduler.schedules == {}


def test_a_change_that_loses_to_a_concurrent_one_leaves_scheduler_as_the_winner_set_it():
    schedules, store, scheduler = service()
    made = schedules.create("flow", {"expression": "rate(1 hour)"}, None, None)
    key = ("flow", made["id"])

    def concurrent_change() -> None:  # another request writes between this one's read and its write
        store.before_replace = None
        store.items[key] = {**store.items[key], "expression": "rate(2 hours)",
                            "row_version": store.items[key]["row_version"] + 1}

    store.before_replace = concurrent_change
    with pytest.raises(Conflict):
        schedules.update("flow", made["id"], {"expression": "rate(3 hours)"})
    assert store.items[key]["expression"] == "rate(2 hours)"
    assert scheduler.schedules[made["id"]]["expression"] == "rate(2 hours)"


def test_a_delete_cut_short_before_scheduler_converges_at_the_next_fire():
    schedules, store, scheduler = service()
    made = schedules.create("flow", {"expression": "rate(1 hour)"}, None, None)
    store.delete("flow", made["id"])  # the record went; the process died before Scheduler's delete
    assert made["id"] in scheduler.schedules
    assert schedules.fire("flow", made["id"], "2026-01-05T10:00:00Z") == {"outcome": "gone"}
    assert scheduler.schedules == {}


@pytest.mark.parametrize("event", [("", "x", "2026-01-05T10:00:00Z"), ("flow", "", "2026-01-05T10:00:00Z"),
                                   ("flow", "x" * 65, "2026-01-05T10:00:00Z"), ("flow", "x", "not a time"),
                                   ("flow", "x", "2026-01-05T10:00:00")])
def test_a_fire_that_is_not_from_scheduler_starts_nothing(event):
    schedules, _, _ = service()
    assert schedules.fire(*event) == {"outcome": "invalid"}


def test_a_delete_while_scheduler_is_unavailable_still_deletes_and_the_leftover_goes_at_its_fire():
    schedules, store, scheduler = service()
    made = schedules.create("flow", {"expression": "rate(1 hour)"}, None, None)
    scheduler.down = True
    schedules.delete("flow", made["id"])
    assert store.items == {} and made["id"] in scheduler.schedules
    scheduler.down = False
    assert schedules.fire("flow", made["id"], "2026-01-05T10:00:00Z") == {"outcome": "gone"}
    assert scheduler.schedules == {}


def test_deleting_every_schedule_of_a_workflow_removes_ours_and_schedulers_even_when_scheduler_is_down():
    schedules, store, scheduler = service()
    made = [schedules.create("wf", {"expression": e}, None, None)["id"] for e in ("rate(1 hour)", "rate(2 hours)")]
    other = schedules.create("other", {"expression": "rate(1 hour)"}, None, None)["id"]
    assert set(scheduler.schedules) == {*made, other}
    assert schedules.delete_all("wf") == 2
    assert store.list("wf") == [] and set(scheduler.schedules) == {other}
    again = schedules.create("wf", {"expression": "rate(3 hours)"}, None, None)["id"]
    scheduler.down = True  # ours go; Scheduler's left behind finds no record at its next fire and deletes itself
    assert schedules.delete_all("wf") == 1
    assert store.list("wf") == [] and again in scheduler.schedules
