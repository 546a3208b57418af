"""DynamoDB store of the key-value entries: one item per (tenant and namespace, key), written conditionally.

Every write is one UpdateItem or DeleteItem whose condition DynamoDB checks atomically with the write, so
racing writers holding the same version get exactly one winner. Expired items may still be in the table
(TTL deletes them late, emulators never): every condition and read treats them as absent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

LIVE = "(attribute_not_exists(expires_at) OR expires_at > :now)"
GONE = "(attribute_not_exists(sk) OR expires_at <= :now)"


class ConditionFailed(Exception):
    """The entry was not as the write required (another writer got there first, or it does not exist)."""


class KvStore:
    def __init__(self, ddb: DynamoDBClient, table: str):
        self._ddb = ddb
        self._table = table

    def get(self, pk: str, key: str) -> dict[str, Any] | None:
        """The stored item, expired or not (the caller compares expires_at with its clock)."""
        found = self._ddb.get_item(TableName=self._table, Key=_key(pk, key), ConsistentRead=True)
        return _record(found["Item"]) if "Item" in found else None

    def put(self, pk: str, key: str, value: str, updated_at: str, expires_at: int | None, *, now: float,
            version: int | None = None, exists: bool = False, absent: bool = False, writer: str | None = None
            ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Sets the entry whole and counts its version up; `version`: only if the live entry has it; `exists`:
        only if there is a live entry; `absent`: only if there is none. ConditionFailed otherwise. Returns the
        entry as written and the item it replaced (None: there was none), read in the same atomic write."""
        values: dict[str, Any] = {":value": {"S": value}, ":at": {"S": updated_at}, ":zero": {"N": "0"},
                                  ":one": {"N": "1"}}
        update = "SET #v = :value, updated_at = :at, version = if_not_exists(version, :zero) + :one"
        if expires_at is not None:
            update += ", expires_at = :expires"
            values[":expires"] = {"N": str(expires_at)}
        if writer is not None:
            update += ", writer = :writer"
            values[":writer"] = {"S": writer}
        removed = [name for name, kept in (("expires_at", expires_at), ("writer", writer)) if kept is None]
        if removed:
            update += " REMOVE " + ", ".join(removed)
        conditions = []
        if version is not None:
            conditions += ["version = :expected", LIVE]
            values[":expected"] = {"N": str(version)}
        elif exists:
            conditions += ["attribute_exists(sk)", LIVE]
        elif absent:
            conditions.append(GONE)
        request: dict[str, Any] = {"TableName": self._table, "Key": _key(pk, key), "UpdateExpression": update,
                                   "ExpressionAttributeNames": {"#v": "value"}, "ReturnValues": "ALL_OLD"}
        if conditions:
            values[":now"] = {"N": _number(now)}
            request["ConditionExpression"] = " AND ".join(conditions)
        request["ExpressionAttributeValues"] = values
        try:
            found = self._ddb.update_item(**request).get("Attributes")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConditionFailed() from exc
            raise
        before = _record(found) if found else None
        written = {"key": key, "value": value, "version": (before["version"] if before else 0) + 1,
                   "updated_at": updated_at}
        if expires_at is not None:
            written["expires_at"] = expires_at
        if writer is not None:
            written["writer"] = writer
        return written, before

    def delete(self, pk: str, key: str, *, now: float, version: int | None = None) -> dict[str, Any]:
        """Deletes the live entry (with `version`: only if it has that version); ConditionFailed when there is
        no such entry. An expired one is left to TTL: to the reader it is gone already."""
        condition = "attribute_exists(sk) AND " + LIVE
        values: dict[str, Any] = {":now": {"N": _number(now)}}
        if version is not None:
            condition += " AND version = :expected"
            values[":expected"] = {"N": str(version)}
        try:
            found = self._ddb.delete_item(TableName=self._table, Key=_key(pk, key), ConditionExpression=condition,
                                          ExpressionAttributeValues=values, ReturnValues="ALL_OLD")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConditionFailed() from exc
            raise
        return _record(found["Attributes"])

    def page(self, pk: str, prefix: str, limit: int, after: str | None, *, now: float
             ) -> tuple[list[dict[str, Any]], str | None]:
        """One Query: the live entries whose key starts with `prefix`, in key order after `after`, without
        their values; and the key to continue after (None at the end). The query reads limit + 1 items, so a
        full last page says it is the last; expired items it skips can make a page short."""
        request: dict[str, Any] = {
            "TableName": self._table, "ConsistentRead": True, "Limit": limit + 1,
            "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :prefix)" if prefix else ""),
            "FilterExpression": LIVE, "ProjectionExpression": "sk, version, updated_at, expires_at",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":now": {"N": _number(now)}},
        }
        if prefix:
            request["ExpressionAttributeValues"][":prefix"] = {"S": prefix}
        if after:
            request["ExclusiveStartKey"] = _key(pk, after)
        found = self._ddb.query(**request)
        records = [_record(item) for item in found.get("Items", [])]
        if len(records) > limit:
            return records[:limit], records[limit - 1]["key"]
        last = found.get("LastEvaluatedKey")
        return records, (last["sk"]["S"] if last else None)


def _key(pk: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": key}}


def _number(value: float) -> str:
    return repr(float(value))


def _record(item: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"key": item["sk"]["S"], "version": int(item["version"]["N"]),
                              "updated_at": item.get("updated_at", {}).get("S")}
    if "value" in item:
        record["value"] = item["value"]["S"]
    if "expires_at" in item:
        record["expires_at"] = int(float(item["expires_at"]["N"]))
    if "writer" in item:
        record["writer"] = item["writer"]["S"]
    return record
