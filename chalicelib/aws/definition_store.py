"""DynamoDB store of definitions: every revision kept, plus pointers to the latest and per version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.aws.items import from_item, to_item
from chalicelib.aws.paging import query_all

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

KIND = "definition"


class DefinitionStore:
    def __init__(self, ddb: DynamoDBClient, table: str):
        self._ddb = ddb
        self._table = table

    def put_revision(self, record: dict[str, Any]) -> None:
        """Stores one revision (an immutable record: the same content always has the same revision)."""
        self._ddb.put_item(TableName=self._table, Item=to_item({**record, "sk": f"rev#{record['revision']}"}))

    def point_to(self, record: dict[str, Any]) -> None:
        """Moves the workflow's latest pointer and its version's pointer to this revision."""
        pointer = {k: v for k, v in record.items() if k != "body"}
        self._ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": self._table, "Item": to_item({**pointer, "sk": f"ver#{record['version']}"})}},
            {"Put": {"TableName": self._table, "Item": to_item({**pointer, "sk": "latest", "kind": KIND})}},
        ])

    def _get(self, name: str, sk: str) -> dict[str, Any] | None:
        item = self._ddb.get_item(TableName=self._table, Key={"name": {"S": name}, "sk": {"S": sk}}, ConsistentRead=True)
        return from_item(item["Item"]) if "Item" in item else None

    def latest(self, name: str) -> dict[str, Any] | None:
        return self._get(name, "latest")

    def revision(self, name: str, revision: str) -> dict[str, Any] | None:
        return self._get(name, f"rev#{revision}")

    def version(self, name: str, version: str) -> dict[str, Any] | None:
        return self._get(name, f"ver#{version}")

    def list_latest(self) -> list[dict[str, Any]]:
        return [from_item(i) for i in query_all(
            self._ddb, TableName=self._table, IndexName="by_kind", KeyConditionExpression="kind = :k",
            ExpressionAttributeValues={":k": {"S": KIND}})]
