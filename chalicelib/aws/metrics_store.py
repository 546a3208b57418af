"""DynamoDB store of the metric counters: one item per (tenant, metric, labels), changed by atomic ADDs.

pk is the tenant (core/metrics.py SERVICE_WIDE for service-wide counters), sk the metric and its labels;
an ADD creates the item on first use, so no write ever reads first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_PAGES = 20


class MetricsStore:
    def __init__(self, ddb: DynamoDBClient, table: str):
        self._ddb = ddb
        self._table = table

    def add(self, tenant: str, item_key: str, fields: Mapping[str, float]) -> None:
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": {"N": repr(float(value)) if not float(value).is_integer() else str(int(value))}
                  for i, value in enumerate(fields.values())}
        self._ddb.update_item(TableName=self._table, Key={"pk": {"S": tenant}, "sk": {"S": item_key}},
                              UpdateExpression="ADD " + ", ".join(f"#f{i} :v{i}" for i in range(len(fields))),
                              ExpressionAttributeNames=names, ExpressionAttributeValues=values)

    def read(self, tenant: str) -> list[tuple[str, dict[str, float]]]:
        """The tenant's counters as (key, fields): one Query (a few pages at most)."""
        found: list[tuple[str, dict[str, float]]] = []
        request: dict[str, Any] = {"TableName": self._table, "KeyConditionExpression": "pk = :pk",
                                   "ExpressionAttributeValues": {":pk": {"S": tenant}}}
        for _ in range(MAX_PAGES):
            page = self._ddb.query(**request)
            for item in page.get("Items", []):
                found.append((item["sk"]["S"], {k: float(v["N"]) for k, v in item.items() if "N" in v}))
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found

    def tenants(self) -> list[str]:
        """Every tenant with counters (the `tenants` item lists them: each tenant's first counter adds it)."""
        found = self._ddb.get_item(TableName=self._table, Key={"pk": {"S": "_index"}, "sk": {"S": "tenants"}})
        return sorted(found.get("Item", {}).get("names", {}).get("SS", []))

    def register_tenant(self, tenant: str) -> None:
        self._ddb.update_item(TableName=self._table, Key={"pk": {"S": "_index"}, "sk": {"S": "tenants"}},
                              UpdateExpression="ADD #n :t", ExpressionAttributeNames={"#n": "names"},
                              ExpressionAttributeValues={":t": {"SS": [tenant]}})
