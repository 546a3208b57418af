"""DynamoDB store of the audit log: append-only (a put that refuses to overwrite), read by tenant and index.

The store has no update or delete: a record, once written, changes only by expiring (TTL, per stage).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.aws.items import from_item, to_item

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

# Which index finds records by which filter (core/audit.py builds the keys).
INDEXES = {"actor": ("by_actor", "actor_key"), "target": ("by_target", "target_key"),
           "operation": ("by_operation", "operation_key")}


class RecordExists(Exception):
    """A record with this key is stored already: records are never overwritten."""


class AuditStore:
    def __init__(self, ddb: DynamoDBClient, table: str):
        self._ddb = ddb
        self._table = table

    def append(self, record: dict[str, Any]) -> None:
        try:
            self._ddb.put_item(TableName=self._table, Item=to_item(record),
                               ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise RecordExists(record.get("sk")) from exc
            raise

    def page(self, pk: str, filters: dict[str, str], since: str | None, until: str | None, limit: int,
             after: dict[str, str] | None, max_reads: int = 5) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """Newest first: the scope's records (pk) in [since, until], matching every filter. The first filter
        picks the index (one Query of its key); the others are checked by DynamoDB as a FilterExpression, so
        a page may take a few reads (at most `max_reads`) and can come back short with a cursor."""
        names: dict[str, str] = {"#sk": "sk"} if since or until else {}
        values: dict[str, Any] = {}
        request: dict[str, Any] = {"TableName": self._table, "ScanIndexForward": False}
        chosen = next((name for name in INDEXES if name in filters), None)
        if chosen is None:
            condition = "#pk = :pk"
            names["#pk"] = "pk"
            values[":pk"] = {"S": pk}
        else:
            index, attribute = INDEXES[chosen]
            request["IndexName"] = index
            condition = "#key = :key"
            names["#key"] = attribute
            values[":key"] = {"S": f"{pk}|{filters[chosen]}"}
        if since and until:
            condition += " AND #sk BETWEEN :since AND :until"
        elif since:
            condition += " AND #sk >= :since"
        elif until:
            condition += " AND #sk <= :until"
        if since:
            values[":since"] = {"S": since}
        if until:
            values[":until"] = {"S": until + "\uffff"}  # every record of that instant, whatever its id
        checks = []
        for i, (name, wanted) in enumerate(sorted(filters.items())):
            if name == chosen:
                continue
            names[f"#f{i}"] = name
            values[f":f{i}"] = {"S": wanted}
            checks.append(f"#f{i} = :f{i}")
        if checks:
            request["FilterExpression"] = " AND ".join(checks)
        request.update(KeyConditionExpression=condition, ExpressionAttributeNames=names,
                       ExpressionAttributeValues=values)
        items: list[dict[str, Any]] = []
        start: Any = {name: {"S": value} for name, value in after.items()} if after else None
        for _ in range(max_reads):
            request["Limit"] = limit - len(items) + (0 if checks else 1)
            if start:
                request["ExclusiveStartKey"] = start
            found = self._ddb.query(**request)
            items += [from_item(item) for item in found.get("Items", [])]
            start = found.get("LastEvaluatedKey")
            if len(items) >= limit or not start:
                break
        if len(items) > limit:  # read one more than asked: a full last page knows it is the last
            items = items[:limit]
            start = _key_of(items[-1], request.get("IndexName"))
        return items, ({name: typed["S"] for name, typed in start.items()} if start else None)


def _key_of(record: dict[str, Any], index: str | None) -> dict[str, Any]:
    key = {"pk": {"S": record["pk"]}, "sk": {"S": record["sk"]}}
    if index:
        attribute = next(attr for name, attr in INDEXES.values() if name == index)
        key[attribute] = {"S": record[attribute]}
    return key
