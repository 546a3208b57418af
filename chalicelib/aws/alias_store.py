"""DynamoDB store of a workflow's aliases: one item per alias beside its definition's items (so a purge
removes them with it), holding the routes as the API set them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chalicelib.aws.items import from_item, to_item
from chalicelib.aws.paging import query_all

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

PREFIX = "alias#"


class AliasStore:
    def __init__(self, ddb: DynamoDBClient, table: str):
        self._ddb = ddb
        self._table = table

    def get(self, name: str, alias: str) -> dict[str, Any] | None:
        item = self._ddb.get_item(TableName=self._table, Key={"name": {"S": name}, "sk": {"S": PREFIX + alias}},
                                  ConsistentRead=True)
        return _record(from_item(item["Item"])) if "Item" in item else None

    def put(self, record: dict[str, Any]) -> None:
        """Stores the alias as given (the last write wins: an alias is set whole, never merged)."""
        item = {k: v for k, v in record.items() if k != "routes"}
        item.update(sk=PREFIX + record["alias"], routing=json.dumps(record["routes"], separators=(",", ":")))
        self._ddb.put_item(TableName=self._table, Item=to_item(item))

    def list(self, name: str) -> list[dict[str, Any]]:
        return [_record(from_item(i)) for i in query_all(
            self._ddb, TableName=self._table, KeyConditionExpression="#n = :n AND begins_with(sk, :a)",
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={":n": {"S": name}, ":a": {"S": PREFIX}}, ConsistentRead=True)]


def _record(item: dict[str, Any]) -> dict[str, Any]:
    routes = json.loads(item.pop("routing", "[]"))
    item.pop("sk", None)
    return {**item, "routes": routes}
