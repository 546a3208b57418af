"""DynamoDB store of callback tasks (human and webhook steps); the task token stays in here.

Every change of status is one conditional write, so two people (or two sweeps) racing on a task
get exactly one winner; the loser's write fails and nothing half-happens.
"""

from __future__ import annotations

from typing import Any

from chalicelib.aws.conditional_update import TransitionRefused, conditional_update  # noqa: F401 - re-exported
from chalicelib.aws.items import from_item, to_item
from chalicelib.core.tasks import OPEN, index_keys

# Never returned to clients, logged or published: whoever holds the token can complete the step, and
# the callback nonce (with the server secret) makes the callback key; its hash is bookkeeping.
SECRET_ATTRIBUTES = frozenset({"token", "snapshot", "callback_nonce", "callback_key"})
# A webhook step's callback key lives while the step waits: closing the task removes these, which also
# drops it from the sparse by_callback_key index, so a used or ended key finds nothing.
CALLBACK_ATTRIBUTES = ("callback_key", "callback_nonce")
INTERNAL_ATTRIBUTES = frozenset({"created_key", "assignee_status", "group_status", "due_state", "reminder_state",
                                 "overdue_state", "outbox_state", "completed_seq"})


class TaskStore:
    def __init__(self, ddb: Any, table: str):
        self._ddb = ddb
        self._table = table

    # -- writes ------------------------------------------------------------------------------
    def put(self, record: dict[str, Any]) -> None:
        """Writes a task as registered (a new attempt replaces the previous attempt's record)."""
        item = {**record, **index_keys(record), "created_key": f"{record['created_at']}#{record['id']}"}
        if record["status"] == "pending":
            item["due_state"] = OPEN if record.get("due_at") else None
            item["reminder_state"] = OPEN if record.get("reminder_at") else None
        self._ddb.put_item(TableName=self._table, Item=to_item(item))

    def transition(self, task_id: str, *, expect: dict[str, Any] | None = None, set_: dict[str, Any] | None = None,
                   remove: tuple[str, ...] = (), require: tuple[str, ...] = (), absent: tuple[str, ...] = (),
                   after: dict[str, Any]) -> None:
        """One conditional write: `expect` attributes must equal, `require` ones exist, `absent` ones not.

        `after` is the record as it will be, so the derived index keys are kept in step.
        """
        keys = index_keys(after)
        changes = {**(set_ or {}), **{k: v for k, v in keys.items() if v is not None}}
        dropped = tuple(k for k, v in keys.items() if v is None)
        if after.get("status") != "pending":
            dropped += tuple(a for a in CALLBACK_ATTRIBUTES if a not in remove and a not in changes)
        conditional_update(self._ddb, self._table, {"id": {"S": task_id}}, set_=changes, remove=(*remove, *dropped),
                           expect=expect, require=require, absent=absent)

    def delete(self, task_id: str) -> None:
        self._ddb.delete_item(TableName=self._table, Key={"id": {"S": task_id}})

    # -- reads -------------------------------------------------------------------------------
    def get(self, task_id: str) -> dict[str, Any] | None:
        if not task_id or len(task_id) > 64:
            return None
        item = self._ddb.get_item(TableName=self._table, Key={"id": {"S": task_id}}, ConsistentRead=True)
        return from_item(item["Item"]) if "Item" in item else None

    def query(self, index: str, key: str, value: str, *, upto: tuple[str, str] | None = None, limit: int = 100,
              start: dict[str, Any] | None = None, newest_first: bool = True) -> tuple[list[dict[str, Any]], Any]:
        """One page of an index: items and the key to continue from (None at the end)."""
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
        page = self._ddb.query(**kwargs)
        return [from_item(i) for i in page["Items"]], page.get("LastEvaluatedKey")

    def for_instance(self, instance_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start = None
        while True:
            page, start = self.query("by_instance", "instance_id", instance_id, start=start, newest_first=False)
            items += page
            if not start:
                return items


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A task as clients may see it: no token, no snapshot, no index bookkeeping."""
    return {k: v for k, v in record.items() if k not in SECRET_ATTRIBUTES and k not in INTERNAL_ATTRIBUTES}
