"""DynamoDB store of instance events (hash instance_id, range seq); see core/event_stream for the rules.

The same partition keeps each run's per-step attempt counters under keys that sort below every seq
(``!attempt#...``), and the instance's read fence (``!fence``, see core/event_stream), so reading
events never meets them and purging an instance removes them too.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.aws.paging import query_all
from chalicelib.core.event_stream import (
    FLOOR,
    SeqClock,
    at_of,
    bounded_data,
    make_seq,
    public_event,
    seq_moment,
)

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

COUNTER_PREFIX = "!attempt#"
FENCE_KEY = "!fence"  # the highest seq a reader has handed out (or is about to): no event lands at or below it
_PUT_TRIES = 3


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EventStore:
    def __init__(self, ddb: DynamoDBClient, table: str, *, now: Callable[[], datetime] = _utc_now,
                 suffix: Callable[[], str] = lambda: secrets.token_hex(8)):
        self._ddb = ddb
        self._table = table
        self._clock = SeqClock(now)
        self._suffix = suffix

    # -- writes ------------------------------------------------------------------------------
    def append(self, instance_id: str, event_type: str, data: Any = None, *, step: str | None = None) -> dict[str, Any]:
        """Writes one event under a fresh seq (stamped now, just before the write); returns it as readers see it.

        The write holds only while no reader has read past its seq (the fence); refused, it is stamped
        again, later than the fence, so it lands where every reader still finds it."""
        body = bounded_data(data)
        floor: str | None = None
        for attempt in range(_PUT_TRIES):
            seq = self.stamp(after=floor)
            record = {"instance_id": instance_id, "seq": seq, "type": event_type, "at": at_of(seq), "step": step,
                      "data": body}
            put: dict[str, Any] = {"TableName": self._table, "Item": _to_item(record),
                                   "ConditionExpression": "attribute_not_exists(seq)"}
            items: list[Any] = [{"Put": put}, self.fence_request(instance_id, seq)]
            try:
                self._ddb.transact_write_items(TransactItems=items)
                return public_event(record)
            except ClientError as exc:
                reasons = _cancellation_codes(exc)
                # 64 random bits make a collision all but impossible; never overwrite one anyway.
                if not any(code == "ConditionalCheckFailed" for code in reasons) or attempt == _PUT_TRIES - 1:
                    raise
                if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                    floor = self.fence_of(instance_id)
        raise AssertionError("unreachable")

    def stamp(self, *, after: str | None = None) -> str:
        """A seq taken now, for an event written later at this place in the log (put_request, with
        fence_request); with `after`, above that seq too (a fence this process's clock has not passed)."""
        floor = seq_moment(after) + timedelta(microseconds=1) if after is not None else None
        return make_seq(self._clock.next(at_least=floor), self._suffix())

    # -- the read fence ----------------------------------------------------------------------
    def fence_request(self, instance_id: str, seq: str) -> dict[str, Any]:
        """A TransactWriteItems item that holds only while no reader has read up to `seq`: written with
        an event at `seq` (the lowest one, when several), it keeps the event from landing behind a reader."""
        return {"ConditionCheck": {
            "TableName": self._table, "Key": _fence_key(instance_id),
            "ConditionExpression": "attribute_not_exists(upto) OR upto < :s",
            "ExpressionAttributeValues": {":s": {"S": seq}}}}

    def fence(self, instance_id: str, upto: str) -> None:
        """Raises the instance's fence to `upto` (never lowers it): from now on no event lands at or
        below it, so a reader may hand out what a consistent read finds there."""
        try:
            self._ddb.update_item(
                TableName=self._table, Key=_fence_key(instance_id), UpdateExpression="SET upto = :u",
                ConditionExpression="attribute_not_exists(upto) OR upto < :u",
                ExpressionAttributeValues={":u": {"S": upto}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise  # (refused: another reader raised it at least as high)

    def fence_of(self, instance_id: str) -> str | None:
        """The instance's fence, or None when no reader has set one."""
        item = self._ddb.get_item(TableName=self._table, Key=_fence_key(instance_id), ConsistentRead=True).get("Item")
        return item["upto"]["S"] if item and "upto" in item else None

    def put_request(self, instance_id: str, seq: str, event_type: str, data: Any = None, *,
                    step: str | None = None, replace: str | None = None) -> dict[str, Any]:
        """The write of one event at `seq` as an item of a TransactWriteItems, so it stands or falls with
        the change it records. Only where the seq is free, or, with `replace`, over an event of that type
        at the same seq (a logged completion whose delivery was refused becomes task.expired there)."""
        record = {"instance_id": instance_id, "seq": seq, "type": event_type, "at": at_of(seq), "step": step,
                  "data": bounded_data(data)}
        put: dict[str, Any] = {"TableName": self._table, "Item": _to_item(record),
                               "ConditionExpression": "attribute_not_exists(seq)"}
        if replace:
            put.update(ConditionExpression="attribute_not_exists(seq) OR #t = :r",
                       ExpressionAttributeNames={"#t": "type"}, ExpressionAttributeValues={":r": {"S": replace}})
        return {"Put": put}

    def next_attempt(self, instance_id: str, run: str, step: str, kind: str = "machine") -> int:
        """1 for a step's first attempt in this run (execution), 2 for its first retry, and so on.

        Attempts of one step follow each other, so the counter is never raced (moto's non-atomic
        updates are safe here; on DynamoDB an ADD is atomic anyway).
        """
        result = self._ddb.update_item(
            TableName=self._table,
            Key={"instance_id": {"S": instance_id}, "seq": {"S": f"{COUNTER_PREFIX}{run}#{step}#{kind}"}},
            UpdateExpression="ADD attempts :one", ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW")
        return int(result["Attributes"]["attempts"]["N"])

    def purge(self, instance_id: str) -> int:
        """Deletes every item of the instance (events, counters, fence); returns how many events."""
        deleted = 0
        for key in list(self._keys(instance_id)):
            self._ddb.delete_item(TableName=self._table, Key=key)
            deleted += key["seq"]["S"] >= FLOOR
        return deleted

    # -- reads -------------------------------------------------------------------------------
    def after(self, instance_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` events with a seq above `after` (or from the start), oldest first."""
        page = self._ddb.query(
            TableName=self._table, KeyConditionExpression="instance_id = :i AND seq > :a",
            ExpressionAttributeValues={":i": {"S": instance_id}, ":a": {"S": after or FLOOR}},
            ScanIndexForward=True, Limit=limit, ConsistentRead=True)
        return [_from_item(item) for item in page["Items"]]

    def everything(self, instance_id: str) -> list[dict[str, Any]]:
        """The whole log, oldest first: one query, paged only past DynamoDB's 1 MB a page."""
        return [_from_item(item) for item in query_all(
            self._ddb, TableName=self._table, KeyConditionExpression="instance_id = :i AND seq > :a",
            ExpressionAttributeValues={":i": {"S": instance_id}, ":a": {"S": FLOOR}}, ConsistentRead=True)]

    def last(self, instance_id: str) -> dict[str, Any] | None:
        """The newest event, or None."""
        page = self._ddb.query(
            TableName=self._table, KeyConditionExpression="instance_id = :i AND seq > :a",
            ExpressionAttributeValues={":i": {"S": instance_id}, ":a": {"S": FLOOR}},
            ScanIndexForward=False, Limit=1, ConsistentRead=True)
        return _from_item(page["Items"][0]) if page["Items"] else None

    def _keys(self, instance_id: str):
        for item in query_all(self._ddb, TableName=self._table, KeyConditionExpression="instance_id = :i",
                              ExpressionAttributeValues={":i": {"S": instance_id}},
                              ProjectionExpression="instance_id, seq"):
            yield {"instance_id": item["instance_id"], "seq": item["seq"]}


def _fence_key(instance_id: str) -> dict[str, Any]:
    return {"instance_id": {"S": instance_id}, "seq": {"S": FENCE_KEY}}


def _cancellation_codes(exc: ClientError) -> list[str]:
    """Per item of a cancelled transaction, why (``None`` when it was not the cause)."""
    if exc.response["Error"]["Code"] != "TransactionCanceledException":
        return []
    return [str(r.get("Code")) for r in exc.response.get("CancellationReasons") or []]


def log_changes(records: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]:
    """The log table's stream records (as Lambda hands them over) as (INSERT / MODIFY / REMOVE, the
    event after, the event before), each as readers get it; the attempt counters beside them left out."""
    return [(change, new, old) for _, change, new, old in instance_changes(records)]


def instance_changes(records: list[dict[str, Any]]
                     ) -> list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]]:
    """log_changes, each with the id of the instance whose log changed first."""
    changes = []
    for record in records:
        change = record.get("dynamodb") or {}
        keys = change.get("Keys") or {}
        seq = (keys.get("seq") or {}).get("S", "")
        if seq < FLOOR:  # the attempt counters and the fence
            continue
        new, old = change.get("NewImage"), change.get("OldImage")
        changes.append((str((keys.get("instance_id") or {}).get("S", "")), str(record.get("eventName")),
                        public_event(_from_item(new)) if new else None,
                        public_event(_from_item(old)) if old else None))
    return changes


def _to_item(record: dict[str, Any]) -> dict[str, Any]:
    item = {key: {"S": str(record[key])} for key in ("instance_id", "seq", "type", "at")}
    if record.get("step"):
        item["step"] = {"S": str(record["step"])}
    item["data"] = {"S": json.dumps(record.get("data") or {}, separators=(",", ":"))}
    return item


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {key: item[key]["S"] for key in ("instance_id", "seq", "type", "at") if key in item}
    if "step" in item:
        record["step"] = item["step"]["S"]
    record["data"] = json.loads(item["data"]["S"]) if "data" in item else {}
    return record
