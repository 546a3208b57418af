"""DynamoDB store of workflow instances: the index every listing is served from (never a scan)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws.conditional_update import TransitionRefused, conditional_update  # noqa: F401 - re-exported
from chalicelib.aws.items import from_item, to_item
from chalicelib.aws.paging import query_all
from chalicelib.errors import Conflict

PARTITION = "instance"
# Listing filters that have an index of their own, most selective first.
INDEXED_FILTERS = (("correlation_id", "by_correlation"), ("created_by", "by_creator"), ("tenant_id", "by_tenant"),
                   ("definition_name", "by_workflow"), ("status", "by_status"))


class InstanceStore:
    def __init__(self, ddb: Any, table: str):
        self._ddb = ddb
        self._table = table

    def create(self, record: dict[str, Any]) -> None:
        """Creates the instance; Conflict when its id exists (an idempotent repeat, or a clash)."""
        item = to_item({**record, "partition": PARTITION, "created_key": f"{record['created_at']}#{record['id']}"})
        try:
            self._ddb.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(id)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Conflict(f"instance {record['id']} already exists") from exc
            raise

    def get(self, instance_id: str) -> dict[str, Any] | None:
        if not instance_id or len(instance_id) > 64:
            return None
        item = self._ddb.get_item(TableName=self._table, Key={"id": {"S": instance_id}}, ConsistentRead=True)
        return from_item(item["Item"]) if "Item" in item else None

    def update(self, instance_id: str, changes: dict[str, Any], *, expect: dict[str, Any] | None = None,
               expect_not: dict[str, list[Any]] | None = None) -> None:
        """Sets (None removes) attributes; `expect` must equal and `expect_not` values must not match."""
        conditional_update(self._ddb, self._table, {"id": {"S": instance_id}}, set_=changes, expect=expect,
                           expect_not=expect_not)

    def delete(self, instance_id: str) -> None:
        self._ddb.delete_item(TableName=self._table, Key={"id": {"S": instance_id}})

    def search(self, filters: dict[str, str], *, started_after: str | None = None, started_before: str | None = None,
               include_deleted: bool = False, limit: int = 20,
               start: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Newest first through the most selective index; returns the page and where the next begins."""
        index, key, value = "by_created", "partition", PARTITION
        for field, index_name in INDEXED_FILTERS:
            if filters.get(field):
                index, key, value = index_name, field, filters[field]
                break
        names = {"#h": key}
        values: dict[str, Any] = {":h": {"S": value}}
        condition = "#h = :h"
        if started_after or started_before:
            names["#c"] = "created_key"
        if started_after and started_before:
            condition += " AND #c BETWEEN :lo AND :hi"
            values[":lo"], values[":hi"] = {"S": started_after}, {"S": started_before + "~"}
        elif started_after:
            condition += " AND #c >= :lo"
            values[":lo"] = {"S": started_after}
        elif started_before:
            condition += " AND #c <= :hi"
            values[":hi"] = {"S": started_before + "~"}  # '~' sorts after the '#id' suffix
        filter_parts = []
        for i, (field, wanted) in enumerate(sorted((f, v) for f, v in filters.items() if v and f != key)):
            names[f"#f{i}"] = field
            values[f":f{i}"] = {"S": wanted}
            filter_parts.append(f"#f{i} = :f{i}")
        if not include_deleted:
            names["#d"] = "deleted_at"
            filter_parts.append("attribute_not_exists(#d)")
        items: list[dict[str, Any]] = []
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self._table, "IndexName": index, "KeyConditionExpression": condition,
                "ExpressionAttributeNames": names, "ExpressionAttributeValues": values, "ScanIndexForward": False,
                "Limit": max(limit, 25),
            }
            if filter_parts:
                kwargs["FilterExpression"] = " AND ".join(filter_parts)
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self._ddb.query(**kwargs)
            for raw in page["Items"]:
                items.append(from_item(raw))
                if len(items) == limit:
                    # Continue right after this item, even if the page had more.
                    following = {"id": raw["id"], "created_key": raw["created_key"], key: raw[key]}
                    more = "LastEvaluatedKey" in page or raw is not page["Items"][-1]
                    return items, following if more else None
            start = page.get("LastEvaluatedKey")
            if not start:
                return items, None

    def due_notifications(self, upto: str) -> list[dict[str, Any]]:
        return [from_item(i) for i in query_all(
            self._ddb, TableName=self._table, IndexName="by_notify",
            KeyConditionExpression="notify_state = :o AND next_notify_at <= :t",
            ExpressionAttributeValues={":o": {"S": "open"}, ":t": {"S": upto}})]

    def with_status(self, status: str, *, created_before: str) -> list[dict[str, Any]]:
        """Instances in a status created before a time (the reconciler's view of possibly stale ones)."""
        return [from_item(i) for i in query_all(
            self._ddb, TableName=self._table, IndexName="by_status",
            KeyConditionExpression="#s = :s AND created_key <= :t", ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}, ":t": {"S": created_before}})]

    def due_chores(self, chore: str, upto: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Instances whose follow-up `chore` has been waiting since `upto` or earlier (the sparse by_chore),
        oldest first; at most `limit` of them."""
        request = {"TableName": self._table, "IndexName": "by_chore",
                   "KeyConditionExpression": "chore = :c AND chore_at <= :t",
                   "ExpressionAttributeValues": {":c": {"S": chore}, ":t": {"S": upto}}}
        if limit is None:
            return [from_item(i) for i in query_all(self._ddb, **request)]
        found: list[dict[str, Any]] = []
        start = None
        while len(found) < limit:
            page = self._ddb.query(**request, Limit=limit - len(found), **({"ExclusiveStartKey": start} if start else {}))
            found += [from_item(i) for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return found

    def watch(self, instance_id: str, at: str, chore: str) -> None:
        """Puts a live instance on the sparse `chore` (due `at`) unless it has another chore; one write.
        TransitionRefused when it has ended or another chore (a launch or a close) stands."""
        try:
            self._ddb.update_item(
                TableName=self._table, Key={"id": {"S": instance_id}},
                UpdateExpression="SET chore = :c, chore_at = :t",
                ConditionExpression="attribute_exists(id) AND #s IN (:r, :w) "
                                    "AND (attribute_not_exists(chore) OR chore = :c)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":c": {"S": chore}, ":t": {"S": at}, ":r": {"S": "running"},
                                           ":w": {"S": "waiting"}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise TransitionRefused(instance_id) from None
            raise
