"""DynamoDB store of workflow instances: every listing is one query of the index its filters name
(core/listing.py), whose derived keys each write keeps in step; never a scan, never a filter."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.aws.conditional_update import TransitionRefused, conditional_update, holds
from chalicelib.aws.items import from_item, projection, to_item
from chalicelib.aws.paging import query_all
from chalicelib.aws.transactions import transact
from chalicelib.core.listing import INSTANCE_KEY_INPUTS, Family, created_key, instance_keys, range_value
from chalicelib.errors import Conflict, InvalidInput

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

# A write whose key inputs moved meanwhile is tried again on the fresh record (only then: a refusal
# of the caller's own condition is the caller's answer).
KEY_RETRIES = 4
# The attributes a key-changing write pins to the values it derived the keys from.
PINNED = ("status", "deleted_at")


class InstanceStore:
    def __init__(self, ddb: DynamoDBClient, table: str):
        self._ddb = ddb
        self._table = table

    def create(self, record: dict[str, Any], *, also: tuple[dict[str, Any], ...] = ()) -> None:
        """Creates the instance; Conflict when its id exists (an idempotent repeat, or a clash).

        `also`: writes of other tables (TransactWriteItems items, e.g. its first event) made in the same
        transaction, so they exist exactly when the instance does."""
        item = to_item({**record, **instance_keys(record), "created_key": created_key(record)})
        put: dict[str, Any] = {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(id)"}
        try:
            if also:
                transact(self._ddb, [{"Put": put}, *also])
            else:
                self._ddb.put_item(**put)
        except TransitionRefused as exc:
            if exc.part:
                raise
            raise Conflict(f"instance {record['id']} already exists") from exc
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
               expect_not: dict[str, list[Any]] | None = None, record: dict[str, Any] | None = None,
               absent: tuple[str, ...] = ()) -> None:
        """Sets (None removes) attributes; `expect` must equal, `expect_not` values must not match and
        `absent` attributes must not exist.

        A change of a key input (status, deleted_at) rewrites the listing keys, derived from the record
        as it will be: `record` (as the caller read it; read here when not given) with the changes. The
        write is pinned to the key inputs it assumed, so keys never disagree with the item.
        """
        key = {"id": {"S": instance_id}}
        if not INSTANCE_KEY_INPUTS & changes.keys():
            conditional_update(self._ddb, self._table, key, set_=changes, expect=expect, expect_not=expect_not,
                               absent=absent)
            return
        current = record
        for _ in range(KEY_RETRIES):
            if current is None:
                current = self.get(instance_id)
                if current is None:
                    raise TransitionRefused(instance_id)
            after = {**current, **changes}
            pins = {a: current.get(a) for a in PINNED if a not in changes}
            try:
                conditional_update(
                    self._ddb, self._table, key, set_={**changes, **instance_keys(after)},
                    expect={**{a: v for a, v in pins.items() if v is not None}, **(expect or {})},
                    expect_not=expect_not, absent=(*(a for a, v in pins.items() if v is None), *absent))
                return
            except TransitionRefused:
                fresh = self.get(instance_id)
                if fresh is None or not holds(fresh, expect=expect, expect_not=expect_not) \
                        or all(fresh.get(a) == v for a, v in pins.items()):
                    raise
                current = fresh  # a key input moved under us: derive again from what is there now
        raise TransitionRefused(instance_id)

    def delete(self, instance_id: str) -> None:
        self._ddb.delete_item(TableName=self._table, Key={"id": {"S": instance_id}})

    def page(self, family: Family, value: str, *, started_after: str | None = None,
             started_before: str | None = None, limit: int = 20, start: dict[str, Any] | None = None,
             attributes: Iterable[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Newest first: one query of `family`'s index reading at most limit + 1 items (the one past
        the page only tells whether another page follows); the page and where the next begins.
        `attributes`: only these are read (and returned), besides the keys the next page starts from."""
        names = {"#h": family.attribute, "#c": family.range_key}
        values: dict[str, Any] = {":h": {"S": value}}
        condition = "#h = :h"
        if started_after and started_before:
            condition += " AND #c BETWEEN :lo AND :hi"
            values[":lo"], values[":hi"] = {"S": started_after}, {"S": started_before + "~"}
        elif started_after:
            condition += " AND #c >= :lo"
            values[":lo"] = {"S": started_after}
        elif started_before:
            condition += " AND #c <= :hi"
            values[":hi"] = {"S": started_before + "~"}  # '~' sorts after the '#id' suffix
        else:
            del names["#c"]
        kwargs: dict[str, Any] = {
            "TableName": self._table, "IndexName": family.index, "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values, "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        if attributes is not None:
            projected = projection([*attributes, "id", "created_at"])  # what the next page's key derives from
            kwargs["ProjectionExpression"] = projected["ProjectionExpression"]
            names.update(projected["ExpressionAttributeNames"])
        try:
            found = self._ddb.query(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ValidationException":  # a cursor of another index's shape
                raise InvalidInput({"message": "cursor is not valid for this query; start without it",
                                    "issues": []}) from None
            raise
        items = [from_item(i) for i in found["Items"]]
        if len(items) <= limit:
            return items, None
        last = items[limit - 1]
        # The index's hash key is the value queried: every item of the page has it (read or not).
        following = {"id": {"S": last["id"]}, family.range_key: {"S": range_value(family, last)},
                     family.attribute: {"S": value}}
        return items[:limit], following

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

    def open_count(self, definition_key: str) -> int:
        """How many instances of a workflow (by its key) are pending, running or waiting (every tenant: the
        by_status index, filtered; a rare, administrative read). An instance started before names were
        scoped has no definition_key: its name is its key."""
        count = 0
        for status in ("pending", "running", "waiting"):
            for page in _pages(self._ddb, TableName=self._table, IndexName="by_status",
                               KeyConditionExpression="#s = :s",
                               FilterExpression="definition_key = :d OR (attribute_not_exists(definition_key) "
                                                "AND definition_name = :d)",
                               ExpressionAttributeNames={"#s": "status"}, Select="COUNT",
                               ExpressionAttributeValues={":s": {"S": status}, ":d": {"S": definition_key}}):
                count += page["Count"]
        return count

    def due_chores(self, chore: str, upto: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Instances whose follow-up `chore` has been waiting since `upto` or earlier (the sparse by_chore),
        oldest first; at most `limit` of them."""
        request: dict[str, Any] = {"TableName": self._table, "IndexName": "by_chore",
                                   "KeyConditionExpression": "chore = :c AND chore_at <= :t",
                                   "ExpressionAttributeValues": {":c": {"S": chore}, ":t": {"S": upto}}}
        if limit is None:
            return [from_item(i) for i in query_all(self._ddb, **request)]
        found: list[dict[str, Any]] = []
        while len(found) < limit:
            page = self._ddb.query(**request, Limit=limit - len(found))
            found += [from_item(i) for i in page["Items"]]
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found

    def watch_request(self, instance_id: str, at: str, chore: str) -> dict[str, Any]:
        """A completion's watch over the instance, as an item of the completion's TransactWriteItems:
        the sparse `chore` due `at` unless a chore stands already (a launch, a close, or a watch that
        keeps its own time), and one more delivery for that watch to confirm (`deliveries`). A chore it
        finds never refuses the transaction; only an instance that no longer exists does."""
        return {"Update": {
            "TableName": self._table, "Key": {"id": {"S": instance_id}},
            "UpdateExpression": "SET chore = if_not_exists(chore, :c), chore_at = if_not_exists(chore_at, :t) "
                                "ADD deliveries :one",
            "ConditionExpression": "attribute_exists(id)",
            "ExpressionAttributeValues": {":c": {"S": chore}, ":t": {"S": at}, ":one": {"N": "1"}}}}


def _pages(ddb: Any, **request: Any) -> Any:
    """Every page of a query (a COUNT query's pages carry counts, not items)."""
    while True:
        page = ddb.query(**request)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}
