"""After an instance ends: its open tasks closed with the reason, a parent step waiting for it answered,
children its steps waited for canceled, instance.ended logged, its webhook sent (InstanceService's ending
half, mixed into it). Repeatable, so the sweep finishes what a process
that stopped half-way left: the end write leaves the sparse `chore = "close"` until all of it is done.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.core.listing import instance_index
from chalicelib.core.tasks import closing
from chalicelib.core.times import iso
from chalicelib.errors import Conflict
from chalicelib.service.child_workflows import answer_parent

CLOSE = "close"
WATCH = "watch"  # see service/launches.py
CLOSE_GRACE = timedelta(seconds=30)  # an ending younger than this may still be closing in its process
TERMINAL = frozenset({"completed", "failed", "canceled"})
log = logging.getLogger("stepflow.instances")


class Endings:
    """Uses InstanceService's _store, _tasks, _notifier, _machines, _now, _publish and cancel."""

    _store: Any
    _machines: Any
    _events: Any
    cancel: Any
    _tasks: Any
    _notifier: Any
    _now: Any
    _publish: Any
    _gates: Any

    def _close(self, record: dict[str, Any]) -> None:
        """An ended instance's follow-up: its open tasks closed, instance.ended, the webhook; repeatable."""
        if self._tasks is not None:
            self._tasks.close_for_instance(record["id"], *closing(record))
        if record.get("parent_token"):
            answer_parent(self._machines, record, self._events())  # a parent step waits for this child
        if record.get("waits_children"):
            self.cancel_waited_children(record)
        if self._gates is not None:
            self._gates.close_for_instance(record["id"])  # its tokens died with its runs
        self._publish("instance.ended", {"id": record["id"], "workflow": record["definition_name"],
                                         "status": record["status"]})
        if (self._notifier is not None and record.get("webhook_url") and not record.get("notifications")
                and not record.get("notify_state")):
            self._notifier.notify(record)  # its own retries take over from its first attempt
        try:
            # Closing the tasks settled the deliveries of its completions too (TaskService.close_for_instance).
            self._store.update(record["id"], {"chore": None, "chore_at": None, "deliveries": None},
                               expect={"chore": CLOSE})
        except TransitionRefused:
            pass

    def cancel_waited_children(self, record: dict[str, Any]) -> int:
        """Cancels the children this ended instance's steps still wait for: nobody hears their end any
        more (a fire-and-forget child, without the parent's token, goes on). How many were canceled."""
        family, value = instance_index({"origin_instance": record["id"]}, tenant=record.get("tenant_id"),
                                       include_deleted=False)
        canceled = 0
        start = None
        for _ in range(50):  # at most 5,000 children, 100 a page
            items, start = self._store.page(family, value, limit=100, start=start, attributes=("id", "status"))
            for item in items:
                if item.get("status") in TERMINAL:
                    continue
                child = self._store.get(item["id"])  # the index lags and does not carry the token
                if child is None or not child.get("parent_token") or child.get("status") in TERMINAL:
                    continue
                try:
                    self.cancel(child["id"], f"its parent {record['id']} ended ({record['status']}) while waiting for it")
                    canceled += 1
                except Conflict:
                    pass  # it ended meanwhile: its end answered (or found no longer waiting) the parent
            if not start:
                break
        return canceled

    def finish_endings(self, grace: timedelta = CLOSE_GRACE) -> int:
        """The sweep's pass over ended instances whose closing was cut short (older than `grace`)."""
        finished = 0
        for stale in self._store.due_chores(CLOSE, iso(self._now() - grace)):
            record = self._store.get(stale["id"])  # the index lags; the table has the truth
            if record is None or record.get("chore") != CLOSE:
                continue
            try:
                self._close(record)
                finished += 1
            except Exception:  # noqa: BLE001 - left for the next sweep; the others still get theirs
                log.warning("closing instance %s failed; the next sweep retries", record["id"], exc_info=True)
        return finished

    def waiting_changed(self, instance_id: str, waiting: bool) -> None:
        """A human/webhook task opened (True: the index shows `waiting`, and no status event is expected
        while it waits, so a watch is removed, unless it still has deliveries to confirm)."""
        new, old = ("waiting", "running") if waiting else ("running", "waiting")
        if waiting:
            # The watch goes first: whoever reads `waiting` finds the whole change made (a watch removed
            # after it could also remove one set meanwhile, by a completion or a reconcile).
            try:
                self._store.update(instance_id, {"chore": None, "chore_at": None}, expect={"chore": WATCH},
                                   absent=("deliveries",))
            except TransitionRefused:
                pass
        try:
            self._store.update(instance_id, {"status": new}, expect={"status": old})
        except TransitionRefused:
            if not waiting or self._tasks is None:
                return
            current = self._store.get(instance_id)
            if current is not None and current["status"] in TERMINAL:
                # The instance ended while this task was being registered: its end may not have seen it.
                self._tasks.close_for_instance(instance_id, *closing(current))
