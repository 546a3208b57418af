"""DynamoDB store of definitions: every revision kept, its history of registrations, and pointers to the
latest and per version.

Items are keyed by the definition's key (core/definition_keys.py) in the `name` attribute; a scoped one
keeps its bare name in `workflow_name`. Records in and out carry both: `key`, and `name` the bare name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from chalicelib.aws.items import from_item, to_item
from chalicelib.aws.paging import query_all
from chalicelib.errors import Conflict

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

KIND = "definition"
ADHOC_KIND = "adhoc"  # the latest pointers of anonymous definitions: listed apart, on request
HISTORY_DIGITS = 6  # hist#000001: the sort key orders the history by number


def history_key(number: int) -> str:
    return f"hist#{number:0{HISTORY_DIGITS}d}"


def _stored(record: dict[str, Any]) -> dict[str, Any]:
    """The item's attributes for a record: the key in `name`, the bare name beside it when they differ."""
    out = {k: v for k, v in record.items() if k != "key"}
    stored = record.get("key") or record["name"]
    if stored != record["name"]:
        out["workflow_name"] = record["name"]
    return {**out, "name": stored}


def _record(item: dict[str, Any]) -> dict[str, Any]:
    """A record from an item (one stored before names were scoped: its key is its name)."""
    found = from_item(item)
    if "name" in found:
        found["key"] = found["name"]
        found["name"] = found.pop("workflow_name", found["name"])
    return found


class DefinitionStore:
    def __init__(self, ddb: DynamoDBClient, table: str):
        self._ddb = ddb
        self._table = table

    def put_revision(self, record: dict[str, Any]) -> None:
        """Stores one revision (an immutable record: the same content always has the same revision, so one
        already stored is kept as first written)."""
        try:
            self._ddb.put_item(TableName=self._table,
                               Item=to_item({**_stored(record), "sk": f"rev#{record['revision']}"}),
                               ConditionExpression="attribute_not_exists(sk)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def point_to(self, record: dict[str, Any], *entries: dict[str, Any]) -> None:
        """Moves the workflow's latest pointer and its version's pointer to this revision; with `entries`,
        appends them to the history in the same transaction (refused if a number is taken, so two
        concurrent registrations cannot both claim one number)."""
        pointer = {k: v for k, v in _stored(record).items() if k != "body"}
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self._table, "Item": to_item({**pointer, "sk": f"ver#{record['version']}"})}},
            {"Put": {"TableName": self._table, "Item": to_item({**pointer, "sk": "latest",
                                                                "kind": ADHOC_KIND if pointer.get("adhoc") else KIND})}},
        ]
        for entry in entries:
            items.append({"Put": {"TableName": self._table,
                                  "Item": to_item({**entry, "name": pointer["name"], "sk": history_key(entry["number"])}),
                                  "ConditionExpression": "attribute_not_exists(sk)"}})
        try:
            # Plain dicts in the request's shape, which the stubs' nested TypedDicts cannot follow.
            self._ddb.transact_write_items(TransactItems=cast("list[TransactWriteItemTypeDef]", items))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise Conflict(f"definition '{record['name']}' changed meanwhile; send the request again") from None
            raise

    def set_active(self, name: str, active: bool, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Marks the latest pointer active or not (with who and when); None when there is no definition."""
        values = {":a": {"BOOL": active}, **{f":v{i}": v for i, v in enumerate(to_item(changes).values())}}
        names = {f"#n{i}": k for i, k in enumerate(to_item(changes))}
        assignments = ", ".join(["active = :a", *(f"#n{i} = :v{i}" for i in range(len(names)))])
        try:
            request: dict[str, Any] = {
                "TableName": self._table, "Key": {"name": {"S": name}, "sk": {"S": "latest"}},
                "UpdateExpression": f"SET {assignments}", "ConditionExpression": "attribute_exists(sk)",
                "ExpressionAttributeValues": values, "ReturnValues": "ALL_NEW"}
            if names:
                request["ExpressionAttributeNames"] = names
            found = self._ddb.update_item(**request)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _record(found["Attributes"])

    def _get(self, name: str, sk: str) -> dict[str, Any] | None:
        item = self._ddb.get_item(TableName=self._table, Key={"name": {"S": name}, "sk": {"S": sk}}, ConsistentRead=True)
        return _record(item["Item"]) if "Item" in item else None

    def latest(self, name: str) -> dict[str, Any] | None:
        return self._get(name, "latest")

    def revision(self, name: str, revision: str) -> dict[str, Any] | None:
        return self._get(name, f"rev#{revision}")

    def version(self, name: str, version: str) -> dict[str, Any] | None:
        return self._get(name, f"ver#{version}")

    def entry(self, name: str, number: int) -> dict[str, Any] | None:
        return self._get(name, history_key(number))

    def history(self, name: str, *, newest_first: bool = True, with_source: bool = False) -> list[dict[str, Any]]:
        """Every history entry of a workflow (without the source text unless asked: a list needs none)."""
        request: dict[str, Any] = {
            "TableName": self._table, "KeyConditionExpression": "#n = :n AND begins_with(sk, :h)",
            "ExpressionAttributeNames": {"#n": "name"},
            "ExpressionAttributeValues": {":n": {"S": name}, ":h": {"S": "hist#"}},
            "ScanIndexForward": not newest_first, "ConsistentRead": True}
        if not with_source:
            fields = ("number", "revision", "version", "created_at", "created_by", "change", "restored_from",
                      "source_format", "state_machine_version_arn")
            request["ExpressionAttributeNames"].update({f"#p{i}": f for i, f in enumerate(fields)})
            request["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(fields)))
        return [_record(i) for i in query_all(self._ddb, **request)]

    def find_revision(self, name: str, revision: str) -> dict[str, Any] | None:
        """The newest history entry that registered this content revision."""
        return next((e for e in self.history(name) if e.get("revision") == revision), None)

    def remove(self, name: str) -> int:
        """Deletes every item of a workflow (revisions, history, pointers); how many were deleted."""
        keys = [{"name": i["name"], "sk": i["sk"]} for i in query_all(
            self._ddb, TableName=self._table, KeyConditionExpression="#n = :n",
            ExpressionAttributeNames={"#n": "name", "#s": "sk"}, ProjectionExpression="#n, #s",
            ExpressionAttributeValues={":n": {"S": name}}, ConsistentRead=True)]
        # The latest pointer goes first: from then on the workflow is not found, even if a delete below fails.
        keys.sort(key=lambda k: k["sk"]["S"] != "latest")
        for key in keys:
            self._ddb.delete_item(TableName=self._table, Key=key)
        return len(keys)

    def list_latest(self, *, adhoc: bool = False) -> list[dict[str, Any]]:
        """Every workflow's latest pointer: the named ones, or (adhoc) the anonymous ones."""
        return [_record(i) for i in query_all(
            self._ddb, TableName=self._table, IndexName="by_kind", KeyConditionExpression="kind = :k",
            ExpressionAttributeValues={":k": {"S": ADHOC_KIND if adhoc else KIND}})]
