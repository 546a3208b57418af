"""DynamoDB store of callback tasks (human and webhook steps); the task token stays in here."""

from __future__ import annotations

from typing import Any

from chalicelib.aws.items import from_item, to_item

# Never returned to clients, logged or published: whoever holds it can complete the step.
SECRET_ATTRIBUTES = frozenset({"token", "snapshot"})


class TaskStore:
    def __init__(self, ddb: Any, table: str):
        self._ddb = ddb
        self._table = table

    def put(self, record: dict[str, Any]) -> None:
        item = to_item({**record, "created_key": f"{record['created_at']}#{record['id']}"})
        self._ddb.put_item(TableName=self._table, Item=item)

    def get(self, task_id: str) -> dict[str, Any] | None:
        item = self._ddb.get_item(TableName=self._table, Key={"id": {"S": task_id}}, ConsistentRead=True)
        return from_item(item["Item"]) if "Item" in item else None

    def for_instance(self, instance_id: str) -> list[dict[str, Any]]:
        page = self._ddb.query(
            TableName=self._table, IndexName="by_instance", KeyConditionExpression="instance_id = :i",
            ExpressionAttributeValues={":i": {"S": instance_id}},
        )
        return [from_item(i) for i in page["Items"]]


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in SECRET_ATTRIBUTES and k != "created_key"}
