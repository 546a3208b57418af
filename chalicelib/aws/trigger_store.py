"""DynamoDB store of webhook triggers: each trigger under its workflow, a lookup item per key hash written
in the same transaction, and the short-lived replay and rate-window items (expired by TTL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.aws.conditional_update import TransitionRefused, conditional_update
from chalicelib.aws.items import from_item, to_item
from chalicelib.aws.paging import query_all
from chalicelib.aws.transactions import transact

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

NOT_THERE = "attribute_not_exists(pk)"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def trigger_key(name: str, trigger_id: str) -> dict[str, Any]:
    return _key(f"def#{name}", f"trigger#{trigger_id}")


def lookup_key(key_hash: str) -> dict[str, Any]:
    return _key(f"key#{key_hash}", "key")


class TriggerStore:
    def __init__(self, ddb: DynamoDBClient, table: str):
        self._ddb = ddb
        self._table = table

    def create(self, record: dict[str, Any]) -> None:
        """The trigger and its key's lookup item, together or not at all."""
        lookup = {"definition_name": record["definition_name"], "trigger_id": record["id"]}
        transact(self._ddb, [
            {"Put": {"TableName": self._table, "ConditionExpression": NOT_THERE,
                     "Item": {**trigger_key(record["definition_name"], record["id"]), **to_item(record)}}},
            {"Put": {"TableName": self._table, "ConditionExpression": NOT_THERE,
                     "Item": {**lookup_key(record["key_hash"]), **to_item(lookup)}}},
        ])

    def get(self, name: str, trigger_id: str) -> dict[str, Any] | None:
        found = self._ddb.get_item(TableName=self._table, Key=trigger_key(name, trigger_id), ConsistentRead=True)
        return _record(found["Item"]) if "Item" in found else None

    def by_key_hash(self, key_hash: str) -> dict[str, Any] | None:
        found = self._ddb.get_item(TableName=self._table, Key=lookup_key(key_hash), ConsistentRead=True)
        if "Item" not in found:
            return None
        lookup = from_item(found["Item"])
        record = self.get(lookup["definition_name"], lookup["trigger_id"])
        # A lookup item whose trigger is another key's (never written so) is no match.
        return record if record is not None and record.get("key_hash") == key_hash else None

    def list(self, name: str) -> list[dict[str, Any]]:
        return [_record(i) for i in query_all(
            self._ddb, TableName=self._table, KeyConditionExpression="pk = :p AND begins_with(sk, :t)",
            ExpressionAttributeValues={":p": {"S": f"def#{name}"}, ":t": {"S": "trigger#"}}, ConsistentRead=True)]

    def update(self, name: str, trigger_id: str, changes: dict[str, Any],
               expect: dict[str, Any] | None = None) -> None:
        """TransitionRefused when the trigger is gone (or not as expected)."""
        conditional_update(self._ddb, self._table, trigger_key(name, trigger_id), set_=changes, expect=expect)

    def delete(self, record: dict[str, Any]) -> None:
        """The trigger and its key's lookup item together (its key answers 404 from then on)."""
        transact(self._ddb, [
            {"Delete": {"TableName": self._table, "Key": trigger_key(record["definition_name"], record["id"])}},
            {"Delete": {"TableName": self._table, "Key": lookup_key(record["key_hash"])}},
        ])

    def claim_delivery(self, trigger_id: str, replay_id: str, now: int, expires_at: int) -> dict[str, Any] | None:
        """Records the delivery as seen (state `open`) unless it was seen within its window: None when it is
        new, else the item as it was (`open`: an earlier attempt did not finish; `done`: a replay)."""
        key = _key(f"seen#{trigger_id}", replay_id)
        try:
            # An item TTL has not removed yet counts as absent once it has expired.
            self._ddb.put_item(TableName=self._table, Item={**key, **to_item({"state": "open", "expires_at": expires_at})},
                               ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                               ExpressionAttributeValues={":now": {"N": str(now)}})
            return None
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        found = self._ddb.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        return from_item(found["Item"]) if "Item" in found else {"state": "open"}

    def delivery_done(self, trigger_id: str, replay_id: str, instance_id: str) -> None:
        try:
            conditional_update(self._ddb, self._table, _key(f"seen#{trigger_id}", replay_id),
                               set_={"state": "done", "instance_id": instance_id})
        except TransitionRefused:
            pass  # expired and removed meanwhile: the timestamp window refuses a replay from here on

    def count(self, trigger_id: str, window: int, expires_at: int) -> int:
        """One more request in the trigger's rate window: the window's count after it (atomic ADD)."""
        answer = self._ddb.update_item(
            TableName=self._table, Key=_key(f"rate#{trigger_id}", str(window)),
            UpdateExpression="ADD #n :one SET expires_at = :exp", ExpressionAttributeNames={"#n": "n"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":exp": {"N": str(expires_at)}}, ReturnValues="UPDATED_NEW")
        return int(answer["Attributes"]["n"]["N"])


def _record(item: dict[str, Any]) -> dict[str, Any]:
    record = from_item(item)
    record.pop("pk", None)
    record.pop("sk", None)
    return record
