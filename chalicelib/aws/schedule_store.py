"""DynamoDB store of a workflow's schedules: one item per schedule beside its definition's items (a purge
removes them with it), found across workflows through the by_kind index (the local runtime's firing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from chalicelib.aws.items import from_item, to_item
from chalicelib.aws.paging import query_all
from chalicelib.errors import Conflict

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

PREFIX = "schedule#"
KIND = "schedule"


class ScheduleStore:
    def __init__(self, ddb: DynamoDBClient, table: str):
        self._ddb = ddb
        self._table = table

    def _key(self, name: str, schedule_id: str) -> dict[str, Any]:
        return {"name": {"S": name}, "sk": {"S": PREFIX + schedule_id}}

    def get(self, name: str, schedule_id: str) -> dict[str, Any] | None:
        item = self._ddb.get_item(TableName=self._table, Key=self._key(name, schedule_id), ConsistentRead=True)
        return _record(item["Item"]) if "Item" in item else None

    def create(self, record: dict[str, Any]) -> None:
        item = to_item({**record, "name": record["definition_name"], "sk": PREFIX + record["id"], "kind": KIND})
        try:
            self._ddb.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(sk)")
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise Conflict(f"schedule '{record['id']}' exists") from None

    def replace(self, record: dict[str, Any], *, revision: int) -> None:
        """Writes the whole schedule if nobody changed it since `revision` was read (Conflict otherwise)."""
        item = to_item({**record, "name": record["definition_name"], "sk": PREFIX + record["id"], "kind": KIND})
        try:
            self._ddb.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_exists(sk) AND #r = :r",
                               ExpressionAttributeNames={"#r": "row_version"},
                               ExpressionAttributeValues={":r": {"N": str(revision)}})
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise Conflict("the schedule changed meanwhile; read it and try again") from None

    def delete(self, name: str, schedule_id: str) -> None:
        self._ddb.delete_item(TableName=self._table, Key=self._key(name, schedule_id))

    def list(self, name: str) -> list[dict[str, Any]]:
        return [_record(i) for i in query_all(
            self._ddb, TableName=self._table, KeyConditionExpression="#n = :n AND begins_with(sk, :p)",
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={":n": {"S": name}, ":p": {"S": PREFIX}}, ConsistentRead=True)]

    def every(self) -> Iterator[dict[str, Any]]:
        """Every workflow's schedules (an index query, eventually consistent)."""
        for item in query_all(self._ddb, TableName=self._table, IndexName="by_kind",
                              KeyConditionExpression="kind = :k", ExpressionAttributeValues={":k": {"S": KIND}}):
            yield _record(item)


def _record(item: dict[str, Any]) -> dict[str, Any]:
    record = from_item(item)
    record.pop("sk", None)
    record.pop("name", None)
    record.pop("kind", None)
    return record
