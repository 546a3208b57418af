"""DynamoDB store of callback tasks (human and webhook steps); the task token stays in here.

Every change of status is one conditional write, so two people (or two sweeps) racing on a task
get exactly one winner; the loser's write fails and nothing half-happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.aws.conditional_update import TransitionRefused, update_request
from chalicelib.aws.items import from_item, projection, to_item
from chalicelib.aws.transactions import transact
from chalicelib.core.listing import (
    COUNTER_INPUTS,
    COUNTER_PREFIX,
    TASK_KEY_ATTRIBUTES,
    counter_deltas,
    counter_id,
    created_key,
    memberships,
    task_keys,
)
from chalicelib.core.tasks import OPEN

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

# Never returned to clients, logged or published: whoever holds the token can complete the step, and
# the callback nonce (with the server secret) makes the callback key; its hash is bookkeeping.
SECRET_ATTRIBUTES = frozenset({"token", "snapshot", "callback_nonce", "callback_key"})
# A webhook step's callback key lives while the step waits: closing the task removes these, which also
# drops it from the sparse by_callback_key index, so a used or ended key finds nothing.
CALLBACK_ATTRIBUTES = ("callback_key", "callback_nonce")
INTERNAL_ATTRIBUTES = frozenset({"created_key", "assignee_status", "group_status", "due_state", "reminder_state",
                                 "overdue_state", "outbox_state", "completed_seq", "workflow_key", "decision_count",
                                 *TASK_KEY_ATTRIBUTES})
REGISTER_RETRIES = 4
ABSENCE_PREFIX = "absence#"


class TaskStore:
    def __init__(self, ddb: DynamoDBClient, table: str, *, sleep: Callable[[float], None] = time.sleep):
        self._ddb = ddb
        self._table = table
        self._sleep = sleep

    # -- writes ------------------------------------------------------------------------------
    def put(self, record: dict[str, Any], *, before: dict[str, Any] | None = None) -> None:
        """Writes a task as registered; a new attempt replaces `before` (the previous attempt's record).

        Conditional on `before` still being there as it was (or on no record), in one transaction with
        its tenant's counters; when another write moved the record meanwhile, it is read again.
        """
        item = {**record, **task_keys(record), "created_key": created_key(record)}
        if record["status"] == "pending":
            item["due_state"] = OPEN if record.get("due_at") else None
            item["reminder_state"] = OPEN if record.get("reminder_at") else None
        for _ in range(REGISTER_RETRIES):
            put: dict[str, Any] = {"TableName": self._table, "Item": to_item(item)}
            if before is None:
                put["ConditionExpression"] = "attribute_not_exists(id)"
            else:
                put["ConditionExpression"] = "#s = :s AND #a = :a"
                put["ExpressionAttributeNames"] = {"#s": "status", "#a": "attempt"}
                put["ExpressionAttributeValues"] = to_item({":s": before["status"], ":a": before["attempt"]})
            try:
                self._write({"Put": put}, counter_deltas(before, item), self._members(before, item))
                return
            except TransitionRefused:
                before = self.get(record["id"])
        raise TransitionRefused(record["id"])

    def transition(self, task_id: str, *, before: dict[str, Any], after: dict[str, Any],
                   expect: dict[str, Any] | None = None, set_: dict[str, Any] | None = None,
                   remove: tuple[str, ...] = (), require: tuple[str, ...] = (), absent: tuple[str, ...] = (),
                   also: tuple[dict[str, Any], ...] = ()) -> None:
        """One conditional write: `expect` attributes must equal, `require` ones exist, `absent` ones not.

        `before` is the record as the caller read it and `after` as it will be: the derived index keys
        follow `after`, and the tenant's counters change by the difference, in the same transaction,
        pinned to the counted attributes of `before` (a stale `before` is refused, never miscounted).
        `also`: writes of other tables (TransactWriteItems items) that stand or fall with this one; a
        refusal names the item that refused (TransitionRefused.part: 0 the task, i the i-th of `also`).
        """
        after = {k: v for k, v in after.items() if k not in remove}
        keys = task_keys(after)
        changes = {**(set_ or {}), **{k: v for k, v in keys.items() if v is not None}}
        dropped = tuple(k for k, v in keys.items() if v is None)
        if after.get("status") != "pending":
            dropped += tuple(a for a in CALLBACK_ATTRIBUTES if a not in remove and a not in changes)
        deltas = counter_deltas(before, after)
        also = (*also, *self._members(before, after))
        conditions: dict[str, Any] = dict(expect or {})
        must_exist, must_lack = list(require), list(absent)
        if deltas:
            for attribute in COUNTER_INPUTS:
                if attribute in conditions or attribute in must_exist or attribute in must_lack:
                    continue
                if before.get(attribute) is None:
                    must_lack.append(attribute)
                elif attribute == "overdue_state":
                    must_exist.append(attribute)
                else:
                    conditions[attribute] = before[attribute]
        request = update_request(self._table, {"id": {"S": task_id}}, set_=changes, remove=(*remove, *dropped),
                                 expect=conditions, require=must_exist, absent=must_lack)
        self._write({"Update": request}, deltas, also)

    def _write(self, action: dict[str, Any], deltas: dict[str, dict[str, int]],
               also: tuple[dict[str, Any], ...] = ()) -> None:
        """The task write alone, or with its counter ADDs and `also` in one TransactWriteItems;
        TransitionRefused when a condition fails."""
        if not deltas and not also:
            try:
                if "Put" in action:
                    self._ddb.put_item(**action["Put"])
                else:
                    self._ddb.update_item(**action["Update"])
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    raise TransitionRefused(str(action)[:80]) from exc
                raise
            return
        # The counters last: they carry no condition, so a refusal's position names the task or an `also`.
        items = [action, *also, *(self._counting(item, amounts) for item, amounts in deltas.items())]
        transact(self._ddb, items, sleep=self._sleep)

    def _members(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[dict[str, Any], ...]:
        """The writes that keep a task's membership items (core/listing.py memberships) as `after` needs
        them: put where new or changed, deleted where gone; none when they stay as they are. They carry no
        condition: the task's own conditional write, in the same transaction, decides."""
        old, new = memberships(before), memberships(after)
        writes: list[dict[str, Any]] = [{"Put": {"TableName": self._table, "Item": to_item(item)}}
                                        for item_id, item in new.items() if old.get(item_id) != item]
        writes += [{"Delete": {"TableName": self._table, "Key": {"id": {"S": item_id}}}}
                   for item_id in old if item_id not in new]
        return tuple(writes)

    def _counting(self, item: str, amounts: dict[str, int]) -> dict[str, Any]:
        names = {f"#c{i}": attribute for i, attribute in enumerate(amounts)}
        values = {f":c{i}": {"N": str(n)} for i, n in enumerate(amounts.values())}
        return {"Update": {"TableName": self._table, "Key": {"id": {"S": item}},
                           "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(amounts))),
                           "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}

    def counters(self, tenant: str | None) -> dict[str, Any]:
        """A tenant's counter item (pending per group, pending, overdue); empty before its first task."""
        found = self._ddb.get_item(TableName=self._table, Key={"id": {"S": counter_id(tenant)}})
        return {k: int(v["N"]) for k, v in found.get("Item", {}).items() if "N" in v}

    def delete(self, task_id: str) -> None:
        """Removes a task (purging its instance), its counts with it, in one transaction."""
        for _ in range(REGISTER_RETRIES):
            before = self.get(task_id)
            if before is None:
                return
            delete: dict[str, Any] = {
                "TableName": self._table, "Key": {"id": {"S": task_id}}, "ConditionExpression": "#s = :s AND #a = :a",
                "ExpressionAttributeNames": {"#s": "status", "#a": "attempt"},
                "ExpressionAttributeValues": to_item({":s": before["status"], ":a": before.get("attempt", 0)})}
            deltas = counter_deltas(before, None)
            members = self._members(before, None)
            try:
                if deltas or members:
                    self._write({"Delete": delete}, deltas, members)
                else:
                    self._ddb.delete_item(TableName=self._table, Key=delete["Key"])
                return
            except TransitionRefused:
                continue
        raise TransitionRefused(task_id)

    # -- out of office ---------------------------------------------------------------------------
    # One item per person (and tenant) in this table, keyed apart from tasks; it carries no index
    # attribute, so no listing or counter sees it.
    def absence(self, tenant: str | None, user: str) -> dict[str, Any] | None:
        item = self._ddb.get_item(TableName=self._table, Key={"id": {"S": absence_id(tenant, user)}},
                                  ConsistentRead=True)
        return from_item(item["Item"]) if "Item" in item else None

    def put_absence(self, tenant: str | None, record: dict[str, Any]) -> None:
        self._ddb.put_item(TableName=self._table, Item=to_item({**record, "id": absence_id(tenant, record["user"])}))

    def delete_absence(self, tenant: str | None, user: str) -> bool:
        """True when there was one."""
        found = self._ddb.delete_item(TableName=self._table, Key={"id": {"S": absence_id(tenant, user)}},
                                      ReturnValues="ALL_OLD")
        return "Attributes" in found

    # -- reads -------------------------------------------------------------------------------
    def get(self, task_id: str) -> dict[str, Any] | None:
        if not task_id or len(task_id) > 64 or task_id.startswith((ABSENCE_PREFIX, COUNTER_PREFIX)):
            return None  # out-of-office entries and counters share the table but are no tasks
        item = self._ddb.get_item(TableName=self._table, Key={"id": {"S": task_id}}, ConsistentRead=True)
        return from_item(item["Item"]) if "Item" in item else None

    def query(self, index: str, key: str, value: str, *, upto: tuple[str, str] | None = None, limit: int = 100,
              start: dict[str, Any] | None = None, newest_first: bool = True,
              attributes: Iterable[str] | None = None) -> tuple[list[dict[str, Any]], Any]:
        """One page of an index: items and the key to continue from (None at the end).
        `attributes`: only these are read (and returned)."""
        names = {"#h": key}
        values: dict[str, Any] = {":h": {"S": value}}
        condition = "#h = :h"
        if upto is not None:
            names["#r"] = upto[0]
            values[":r"] = {"S": upto[1]}
            condition += " AND #r <= :r"
        kwargs: dict[str, Any] = {
            "TableName": self._table, "IndexName": index, "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values, "Limit": limit,
            "ScanIndexForward": not newest_first,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        if attributes is not None:
            projected = projection(attributes)
            kwargs["ProjectionExpression"] = projected["ProjectionExpression"]
            names.update(projected["ExpressionAttributeNames"])
        page = self._ddb.query(**kwargs)
        return [from_item(i) for i in page["Items"]], page.get("LastEvaluatedKey")

    def get_many(self, task_ids: list[str], attributes: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Tasks by id, only `attributes` of each (one BatchGetItem per 100; a missing task is left out)."""
        found: dict[str, dict[str, Any]] = {}
        ids = list(dict.fromkeys(task_ids))
        for first in range(0, len(ids), 100):
            request: dict[str, Any] = {"Keys": [{"id": {"S": i}} for i in ids[first:first + 100]],
                                       "ConsistentRead": True, **projection([*attributes, "id"])}
            pending: Any = {self._table: request}
            while pending:
                answer = self._ddb.batch_get_item(RequestItems=pending)
                for item in answer.get("Responses", {}).get(self._table, []):
                    record = from_item(item)
                    found[record["id"]] = record
                pending = answer.get("UnprocessedKeys") or {}
        return found

    def count_due(self, tenant: str | None, upto: str) -> int:
        """How many of a tenant's pending tasks are due by `upto` and not yet escalated: the part of the
        sweep's sparse by_due index due by then (the sweep's backlog), filtered to the tenant."""
        names = {"#h": "due_state", "#r": "due_at", "#t": "tenant_id"}
        values: dict[str, Any] = {":h": {"S": OPEN}, ":r": {"S": upto}}
        if tenant in (None, ""):
            condition = "attribute_not_exists(#t)"
        else:
            condition = "#t = :t"
            values[":t"] = {"S": tenant}
        kwargs: dict[str, Any] = {"TableName": self._table, "IndexName": "by_due",
                                  "KeyConditionExpression": "#h = :h AND #r <= :r", "FilterExpression": condition,
                                  "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
                                  "Select": "COUNT"}
        total = 0
        while True:
            page = self._ddb.query(**kwargs)
            total += int(page.get("Count", 0))
            if not page.get("LastEvaluatedKey"):
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def for_instance(self, instance_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start = None
        while True:
            page, start = self.query("by_instance", "instance_id", instance_id, start=start, newest_first=False)
            items += page
            if not start:
                return items


def absence_id(tenant: str | None, user: str) -> str:
    """The key of a person's out-of-office entry: not a task id (those are 32 hex digits)."""
    return f"{ABSENCE_PREFIX}{tenant or ''}#{user}"


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A task as clients may see it: no token, no snapshot, no index bookkeeping."""
    return {k: v for k, v in record.items() if k not in SECRET_ATTRIBUTES and k not in INTERNAL_ATTRIBUTES}
