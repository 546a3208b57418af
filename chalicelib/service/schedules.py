"""A workflow's schedules: cron and rate expressions in a time zone that start instances when due (on
AWS EventBridge Scheduler invokes schedule_fired; locally the runtime does), with an overlap policy,
pause/resume and backfills. Every run starts through InstanceService.start, idempotent per
(schedule, scheduled time): a double fire starts one instance."""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import definition_keys
from chalicelib.core.cron import ExpressionError, Timing, parse, zone_named
from chalicelib.core.times import iso
from chalicelib.errors import Conflict, InvalidInput, NotFound, Unavailable

OVERLAPS = ("skip", "buffer_one", "allow")
OPEN = frozenset({"pending", "running", "waiting"})
MAX_INPUT = 32 * 1024
MAX_SCHEDULES = 50  # per workflow
MAX_NEXT_RUNS = 50
MAX_BACKFILL = 100  # runs one backfill may start
MAX_CATCH_UP = 20  # fire times one local tick may fire per schedule
FIELDS = {"expression", "timezone", "start_date", "end_date", "overlap", "input", "revision", "alias", "description"}


def _invalid(location: str, message: str) -> InvalidInput:
    return InvalidInput({"message": "the schedule is not valid", "issues": [
        {"code": "invalid_schedule", "location": location, "message": message}]})


def _moment(value: Any, location: str) -> datetime:
    """An ISO 8601 date-time with a zone (or Z), as UTC."""
    if not isinstance(value, str) or len(value) > 40:
        raise _invalid(location, f"'{location}' is an ISO 8601 date-time such as '2026-01-31T09:00:00Z'")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _invalid(location, f"'{location}' is an ISO 8601 date-time such as '2026-01-31T09:00:00Z'") from None
    if moment.tzinfo is None:
        raise _invalid(location, f"'{location}' needs a time zone offset or 'Z'")
    return moment.astimezone(UTC)


def slot_text(moment: datetime) -> str:
    """A scheduled time as runs carry it: UTC, whole seconds, 'Z'."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def timing(record: dict[str, Any]) -> Timing:
    start = _moment(record["start_date"], "start_date") if record.get("start_date") else None
    end = _moment(record["end_date"], "end_date") if record.get("end_date") else None
    anchor = start or _moment(record["created_at"], "created_at")
    return Timing(parse(record["expression"]), zone_named(record["timezone"]), anchor.replace(microsecond=0), start, end)


class ScheduleService:
    def __init__(self, definitions: Any, store: Any, triggers: Any, instances: Any, instance_store: Any,
                 now: Callable[[], datetime]):
        self._definitions = definitions
        self._store = store
        self._triggers = triggers  # EventBridge Scheduler, or nothing locally (chalicelib/aws/scheduler.py)
        self._instances = instances
        self._instance_store = instance_store
        self._now = now

    # -- reading -------------------------------------------------------------------------------
    def list(self, name: str) -> builtins.list[dict[str, Any]]:
        return [self.view(r) for r in sorted(self._store.list(name), key=lambda r: (r["created_at"], r["id"]))]

    def get(self, name: str, schedule_id: str, next_runs: int = 5) -> dict[str, Any]:
        return self.view(self._record(name, schedule_id), next_runs)

    def record(self, name: str, schedule_id: str) -> dict[str, Any]:
        """The stored schedule (NotFound when the workflow has none with this id)."""
        return self._record(name, schedule_id)

    def _record(self, name: str, schedule_id: str) -> dict[str, Any]:
        record = self._store.get(name, schedule_id) if 0 < len(schedule_id) <= 64 else None
        if record is None:
            raise NotFound(f"definition '{definition_keys.name_of(name)}' has no schedule '{schedule_id[:64]}'")
        return record  # type: ignore[no-any-return]

    def view(self, record: dict[str, Any], next_runs: int = 5) -> dict[str, Any]:
        upcoming: builtins.list[str] = []
        if record["state"] == "enabled":
            upcoming = [slot_text(t) for t in timing(record).times(self._now(), limit=next_runs)]
        return {key: record.get(key) for key in (
            "id", "tenant_id", "expression", "timezone", "start_date", "end_date", "overlap", "input", "revision", "alias",
            "description", "state", "created_at", "created_by", "updated_at", "last_scheduled_at",
            "last_instance_id", "queued_instance_id", "last_error")} | {
            "name": record.get("workflow_name") or record["definition_name"], "fired": record.get("fired", 0), "skipped": record.get("skipped", 0),
            "next_runs": upcoming}

    # -- writing -------------------------------------------------------------------------------
    def create(self, name: str, body: Any, by: str | None, tenant_id: str | None) -> dict[str, Any]:
        """EventBridge Scheduler's schedule first, then our record: a failure in between leaves a schedule
        whose first fire finds no record and deletes it (and the client's retry creates both)."""
        definition = self._definitions.get(name)
        if len(self._store.list(name)) >= MAX_SCHEDULES:
            raise Conflict(f"a workflow has at most {MAX_SCHEDULES} schedules")
        now = iso(self._now())
        # Stored under the definition's key (names are per tenant and namespace), shown by its name.
        record = {"id": uuid.uuid4().hex[:20], "definition_name": definition.get("key") or definition["name"],
                  "workflow_name": definition["name"], "namespace": definition.get("namespace"), "tenant_id": tenant_id,
                  "state": "enabled", "created_at": now, "created_by": by, "updated_at": now, "row_version": 1,
                  "fired": 0, "skipped": 0, **self._parse(body, partial=False)}
        record["next_fire_at"] = self._next(record, self._now())
        self._triggers.put(record)
        self._store.create(record)
        return self.view(record)

    def update(self, name: str, schedule_id: str, body: Any) -> dict[str, Any]:
        record = self._record(name, schedule_id)
        changed = {**record, **self._parse(body, partial=True), "updated_at": iso(self._now())}
        return self._save(record, changed)

    def set_state(self, name: str, schedule_id: str, state: str) -> dict[str, Any]:
        record = self._record(name, schedule_id)
        if record["state"] == state:
            self._triggers.put(record)  # a retry after a failed call converges
            return self.view(record)
        return self._save(record, {**record, "state": state, "updated_at": iso(self._now())})

    def _save(self, record: dict[str, Any], changed: dict[str, Any]) -> dict[str, Any]:
        """EventBridge Scheduler first, then ours: whatever fires is checked against our record (a paused or
        deleted record starts nothing), and the client's retry sets both."""
        changed["next_fire_at"] = self._next(changed, self._now())
        changed["row_version"] = int(record.get("row_version", 1)) + 1
        self._triggers.put(changed)
        try:
            self._store.replace(changed, revision=int(record.get("row_version", 1)))
        except Conflict:
            fresh = self._store.get(record["definition_name"], record["id"])
            if fresh is not None:
                self._triggers.put(fresh)  # the concurrent change won: Scheduler follows it, not ours
            raise
        return self.view(changed)

    def delete(self, name: str, schedule_id: str) -> None:
        """Ours first: a fire of the AWS schedule left behind by a failure finds no record and deletes it."""
        record = self._record(name, schedule_id)
        self._store.delete(name, record["id"])
        try:
            self._triggers.delete(record["id"])
        except Unavailable:
            pass  # deleted for us already: its next fire finds no record and deletes it

    def delete_all(self, name: str) -> int:
        """Every schedule of the workflow, each as delete() does it (a purge of the definition); how many."""
        records = self._store.list(name)
        for record in records:
            self._store.delete(name, record["id"])
            try:
                self._triggers.delete(record["id"])
            except Unavailable:
                pass  # as in delete()
        return len(records)


    def _next(self, record: dict[str, Any], after: datetime) -> str | None:
        if record["state"] != "enabled":
            return None
        found = timing(record).after(after)
        return slot_text(found) if found else None

    def _parse(self, body: Any, *, partial: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _invalid("body", "the body is a JSON object such as {\"expression\": \"rate(1 hour)\"}")
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            raise _invalid(str(unknown[0])[:40], f"unknown field; a schedule has {', '.join(sorted(FIELDS))}")
        out: dict[str, Any] = {}
        if "expression" in body or not partial:
            try:
                parse(body.get("expression"))  # type: ignore[arg-type]
            except ExpressionError as exc:
                raise _invalid("expression", str(exc)) from None
            out["expression"] = body["expression"].strip()
        if "timezone" in body or not partial:
            zone = body.get("timezone", "UTC")
            try:
                zone_named(zone)
            except ExpressionError as exc:
                raise _invalid("timezone", str(exc)) from None
            out["timezone"] = zone
        for field in ("start_date", "end_date"):
            if body.get(field) is not None:
                out[field] = slot_text(_moment(body[field], field))
            elif field in body or not partial:
                out[field] = None
        if out.get("start_date") and out.get("end_date") and out["end_date"] <= out["start_date"]:
            raise _invalid("end_date", "'end_date' is after 'start_date'")
        if "overlap" in body or not partial:
            overlap = body.get("overlap", "skip")
            if overlap not in OVERLAPS:
                raise _invalid("overlap", f"'overlap' is one of {', '.join(OVERLAPS)}")
            out["overlap"] = overlap
        if "input" in body or not partial:
            given = body.get("input") or {}
            if not isinstance(given, dict) or len(json.dumps(given)) > MAX_INPUT:
                raise _invalid("input", f"'input' is a JSON object of at most {MAX_INPUT // 1024} KB")
            if "scheduled_at" in given:
                raise _invalid("input.scheduled_at", "each run's input gets 'scheduled_at' from the schedule")
            out["input"] = given
        if "description" in body or not partial:
            text = body.get("description")
            if text is not None and (not isinstance(text, str) or len(text) > 500):
                raise _invalid("description", "'description' is text of at most 500 characters")
            out["description"] = text
        revision, alias = body.get("revision"), body.get("alias")
        if revision is not None and alias is not None:
            raise _invalid("alias", "give 'revision' or 'alias', not both: a run starts one revision")
        if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int | str)
                                     or not 0 < len(str(revision)) <= 64):
            raise _invalid("revision", "'revision' is a revision's number or content id")
        if alias is not None and (not isinstance(alias, str) or not 0 < len(alias) <= 80):
            raise _invalid("alias", "'alias' is an alias name")
        if "revision" in body or "alias" in body or not partial:
            out["revision"], out["alias"] = revision, alias
        return out

    # -- firing --------------------------------------------------------------------------------
    def fire(self, name: str, schedule_id: str, scheduled_at: str, *, backfill: bool = False) -> dict[str, Any]:
        """Starts the run due at `scheduled_at` unless the schedule is gone, paused, outside its dates or its
        overlap policy says no. Returns what happened ({"outcome": ..., "instance_id": ...})."""
        if not name or not schedule_id or len(schedule_id) > 64:
            return {"outcome": "invalid"}
        try:
            slot = slot_text(_moment(scheduled_at, "scheduled_at"))
        except InvalidInput:
            return {"outcome": "invalid"}  # not from Scheduler: retrying it would not help
        record = self._store.get(name, schedule_id)
        if record is None:
            self._triggers.delete(str(schedule_id)[:64])  # left behind by a delete cut short: converge
            return {"outcome": "gone"}
        if record["state"] != "enabled" and not backfill:
            return {"outcome": "paused"}
        if (record.get("start_date") and slot < record["start_date"]) or (record.get("end_date") and slot > record["end_date"]):
            return {"outcome": "outside_dates"}
        queued = self._promote(record)
        start_now = True
        if not backfill and record["overlap"] != "allow" and self._open(record.get("last_instance_id")):
            if record["overlap"] == "skip" or queued:
                self._note(record, skipped=True)
                return {"outcome": "skipped"}
            start_now = False  # buffer_one: created now, started when the open run has ended
        try:
            instance_id, created = self._start(record, slot, start_now)
        except (Conflict, InvalidInput, NotFound) as exc:  # inactive workflow, budget, bad pin: retrying won't help
            self._note(record, error=str(getattr(exc, "detail", ""))[:300] or type(exc).__name__)
            return {"outcome": "failed"}
        if not backfill:
            self._note(record, slot=slot, instance_id=instance_id if start_now else None,
                       queued=None if start_now else instance_id, counted=created)
        outcome = ("started" if start_now else "queued") if created else "already_started"
        return {"outcome": outcome, "instance_id": instance_id}

    def _start(self, record: dict[str, Any], slot: str, start_now: bool) -> tuple[str, bool]:
        from chalicelib.service.requests import StartInstance, parse_body  # pydantic: loaded by the first fire

        request = parse_body(StartInstance, dict(
            definition_name=record.get("workflow_name") or record["definition_name"], namespace=record.get("namespace"),
            tenant_id=record.get("tenant_id"), input_data={**(record.get("input") or {}), "scheduled_at": slot},
            user_id=f"schedule:{record['id']}", origin_reference=f"schedule:{record['id']}",
            revision=record.get("revision"), alias=record.get("alias"), start=start_now))  # a field it refuses: InvalidInput
        view, created = self._instances.start(request, f"schedule:{record['id']}:{slot}")
        return view["id"], created

    def _open(self, instance_id: str | None) -> bool:
        found = self._instance_store.get(instance_id) if instance_id else None
        return bool(found) and found.get("status") in OPEN  # type: ignore[union-attr]

    def _promote(self, record: dict[str, Any]) -> bool:
        """Starts the buffered run once the run before it has ended; whether one is still buffered."""
        queued = record.get("queued_instance_id")
        if not queued:
            return False
        if self._open(record.get("last_instance_id")):
            return True
        found = self._instance_store.get(queued) or {}
        if found.get("status") == "pending":
            try:
                self._instances.start_pending(queued)
            except Conflict:
                pass  # started meanwhile
        self._note(record, queued="", instance_id=queued)
        return False

    def _note(self, record: dict[str, Any], *, slot: str | None = None, instance_id: str | None = None,
              queued: str | None = None, skipped: bool = False, error: str | None = None,
              counted: bool = True) -> None:
        """Records a fire on the schedule (re-read and retried when a concurrent write won)."""
        for _ in range(5):
            changed = dict(record)
            if slot and slot >= (record.get("last_scheduled_at") or ""):
                changed["last_scheduled_at"] = slot
                changed["fired"] = int(record.get("fired", 0)) + (1 if counted else 0)
            if instance_id:
                changed["last_instance_id"] = instance_id
            if queued is not None:
                changed["queued_instance_id"] = queued or None
            if skipped:
                changed["skipped"] = int(record.get("skipped", 0)) + 1
            changed["last_error"] = error
            changed["row_version"] = int(record.get("row_version", 1)) + 1
            try:
                self._store.replace(changed, revision=int(record.get("row_version", 1)))
                record.update(changed)
                return
            except Conflict:
                fresh = self._store.get(record["definition_name"], record["id"])
                if fresh is None:
                    return
                record.clear()
                record.update(fresh)

    def due(self, now: datetime, catch_up: timedelta = timedelta(0)) -> builtins.list[tuple[str, str, str]]:
        """(workflow, schedule id, scheduled time) of every fire time of the enabled schedules that is due by
        `now` and at most `catch_up` old (at most MAX_CATCH_UP each), each schedule advanced past `now`: the
        local runtime's EventBridge Scheduler. A tick that comes late fires the times it passed; times
        older than `catch_up` (the service was down) are for a backfill."""
        found = []
        for record in self._store.every():
            due_at = record.get("next_fire_at")
            if record.get("state") != "enabled" or not due_at or due_at > slot_text(now):
                continue
            try:
                record = self._store.get(record["definition_name"], record["id"])  # the index lags the table
                if not record or record.get("next_fire_at") != due_at or record.get("state") != "enabled":
                    continue
                first = max(_moment(due_at, "next_fire_at"), now - catch_up)
                slots = builtins.list(timing(record).times(first - _SECOND, now, limit=MAX_CATCH_UP))
                self._store.replace({**record, "next_fire_at": self._next(record, max([now, *slots])),
                                     "row_version": int(record.get("row_version", 1)) + 1},
                                    revision=int(record.get("row_version", 1)))
            except (Conflict, ExpressionError, InvalidInput):
                continue  # changed meanwhile: the next tick reads it again
            found += [(record["definition_name"], record["id"], slot_text(slot)) for slot in slots]
        return found

    def start_buffered(self) -> int:
        """The sweep's pass: starts each buffer_one run whose open run has ended since (without waiting for
        the schedule's next fire); the number started."""
        started = 0
        for listed in self._store.every():
            if not listed.get("queued_instance_id"):
                continue
            record = self._store.get(listed["definition_name"], listed["id"])
            if record and record.get("queued_instance_id") and not self._promote(record):
                started += 1
        return started

    def backfill(self, name: str, schedule_id: str, body: Any) -> dict[str, Any]:
        """Starts one run per slot in [from, to] (at most MAX_BACKFILL), regardless of pause and overlap; a
        slot that already ran finds its instance (the start is idempotent per slot) and starts nothing."""
        record = self._record(name, schedule_id)
        if not isinstance(body, dict) or set(body) - {"from", "to"} or "from" not in body or "to" not in body:
            raise _invalid("body", "the body is {\"from\": <date-time>, \"to\": <date-time>}")
        start, end = _moment(body["from"], "from"), _moment(body["to"], "to")
        if end < start:
            raise _invalid("to", "'to' is after 'from'")
        if end > self._now():
            raise _invalid("to", "a backfill covers the past only")
        slots = builtins.list(timing(record).times(start.replace(microsecond=0) - _SECOND, end, limit=MAX_BACKFILL + 1))
        if len(slots) > MAX_BACKFILL:
            raise _invalid("to", f"the range has more than {MAX_BACKFILL} runs; backfill a shorter range")
        runs = []
        for moment in slots:
            slot = slot_text(moment)
            result = self.fire(name, schedule_id, slot, backfill=True)
            runs.append({"scheduled_at": slot, **result})
        return {"name": record.get("workflow_name") or name, "schedule_id": record["id"], "runs": runs}


_SECOND = timedelta(seconds=1)
