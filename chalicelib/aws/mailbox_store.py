"""DynamoDB store of event mailboxes: per (tenant, event type, correlation), the receive steps waiting and
the events kept until one does, in one item of the tasks table (`box#<hash>`).

One item per key makes every decision a single conditional write on a version read consistently: an
event kept while a receiver registers, or two receivers taking one kept event, cannot both win; the
loser reads the box again. Its tasks-table neighbours (tasks, tenant counters) are never confused with it:
it carries none of the attributes the table's indexes are keyed on.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.aws.conditional_update import TransitionRefused

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

BOX_PREFIX = "box#"


def box_id(tenant: str | None, event_type: str, scope: str, value: str) -> str:
    """The item id of a mailbox: a hash of its key, so any correlation value (length, characters) fits."""
    raw = json.dumps([tenant or "", event_type, scope, value], separators=(",", ":"))
    return BOX_PREFIX + hashlib.sha256(raw.encode()).hexdigest()[:40]


class MailboxStore:
    def __init__(self, ddb: DynamoDBClient, table: str):
        self._ddb = ddb
        self._table = table

    def get(self, box: str) -> dict[str, Any]:
        """The box as it is now (consistent read); an empty box at version 0 when it was never written."""
        found = self._ddb.get_item(TableName=self._table, Key={"id": {"S": box}}, ConsistentRead=True)
        item = found.get("Item")
        content = json.loads(item["content"]["S"]) if item and "content" in item else {}
        return {"messages": [], "receivers": [], "seen": [], **content, "id": box,
                "version": int(item["version"]["N"]) if item else 0}

    def write_request(self, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        """The Put (a TransactWriteItems item) of `after`, conditional on the box still being at the
        version `before` was read at; it writes the next version."""
        # The lists go as one JSON document: the item is read and written whole, never queried.
        content = {k: v for k, v in after.items() if k not in ("id", "version")}
        item = {"id": {"S": before["id"]}, "version": {"N": str(int(before.get("version") or 0) + 1)},
                "content": {"S": json.dumps(content, separators=(",", ":"), sort_keys=True)}}
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if not before.get("version"):
            put["ConditionExpression"] = "attribute_not_exists(id)"
        else:
            put["ConditionExpression"] = "#v = :v"
            put["ExpressionAttributeNames"] = {"#v": "version"}
            put["ExpressionAttributeValues"] = {":v": {"N": str(before["version"])}}
        return {"Put": put}

    def write(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Writes the box; TransitionRefused when it changed since `before` was read."""
        try:
            self._ddb.put_item(**self.write_request(before, after)["Put"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise TransitionRefused(before["id"]) from exc
            raise
