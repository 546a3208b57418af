"""DynamoDB store of workflow instances, listed newest first through the by_created index."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws.items import from_item, to_item
from chalicelib.errors import Conflict

PARTITION = "instance"


class InstanceStore:
    def __init__(self, ddb: Any, table: str):
        self._ddb = ddb
        self._table = table

    def create(self, record: dict[str, Any]) -> None:
        item = to_item({**record, "partition": PARTITION, "created_key": f"{record['created_at']}#{record['id']}"})
        try:
            self._ddb.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(id)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Conflict(f"instance {record['id']} already exists") from exc
            raise

    def get(self, instance_id: str) -> dict[str, Any] | None:
        item = self._ddb.get_item(TableName=self._table, Key={"id": {"S": instance_id}}, ConsistentRead=True)
        return from_item(item["Item"]) if "Item" in item else None

    def update(self, instance_id: str, changes: dict[str, Any]) -> None:
        if not changes:
            return
        typed = to_item(changes)
        names = {f"#k{i}": k for i, k in enumerate(typed)}
        values = {f":v{i}": v for i, v in enumerate(typed.values())}
        expression = "SET " + ", ".join(f"#k{i} = :v{i}" for i in range(len(typed)))
        self._ddb.update_item(TableName=self._table, Key={"id": {"S": instance_id}}, UpdateExpression=expression,
                              ExpressionAttributeNames=names, ExpressionAttributeValues=values)

    def newest_first(self, page_size: int = 100):
        """Yields instances newest first, page by page from the index (never a scan)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table, "IndexName": "by_created", "ScanIndexForward": False, "Limit": page_size,
            "KeyConditionExpression": "#p = :p", "ExpressionAttributeNames": {"#p": "partition"},
            "ExpressionAttributeValues": {":p": {"S": PARTITION}},
        }
        while True:
            page = self._ddb.query(**kwargs)
            for item in page["Items"]:
                yield from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
