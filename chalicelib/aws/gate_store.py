"""DynamoDB store of dependency gates (core/gates.py): one item per gated step of a run, in the triggers
table under `gate#<instance>`, where the steps it waits for arrive and its task token registers.

Arrivals and the registration are single UpdateItems that return the whole item, so whichever of them
comes last sees the pair complete; `claim` then lets exactly one caller release the token. Each
arrival is a member of a string set, so a repeated arrival (a retried Lambda) counts once. The outputs
the gated step needs travel in the item: each arrival (and the registration) writes the steps map it ended
with as one JSON attribute (`m:<step>`), so a write costs one clause whatever the map's size; the maps
of one gate must fit in an item together (400 KB).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.aws.paging import query_all

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

MAP_PREFIX = "m:"
# Step Functions runs an execution for a year at most; TTL removes what an unclosed run left after that.
KEEP_SECONDS = 366 * 86400


def _key(instance_id: str, run: str, step: str) -> dict[str, Any]:
    return {"pk": {"S": f"gate#{instance_id}"}, "sk": {"S": f"{run}#{step}"}}


class GateStore:
    def __init__(self, ddb: DynamoDBClient, table: str):
        self._ddb = ddb
        self._table = table

    def _update(self, key: dict[str, Any], arrived: list[str], writer: str, steps: dict[str, Any],
                extra_set: dict[str, Any]) -> dict[str, Any]:
        names: dict[str, str] = {"#m": MAP_PREFIX + writer}
        values: dict[str, Any] = {":exp": {"N": str(int(time.time()) + KEEP_SECONDS)},
                                  ":m": {"S": json.dumps(steps, separators=(",", ":"))}}
        sets = ["expires_at = if_not_exists(expires_at, :exp)", "#m = :m"]
        for i, (name, value) in enumerate(extra_set.items()):
            names[f"#x{i}"] = name
            values[f":x{i}"] = value
            sets.append(f"#x{i} = :x{i}")
        expression = "SET " + ", ".join(sets)
        if arrived:
            values[":a"] = {"SS": sorted(set(arrived))}
            expression += " ADD arrived :a"
        return _gate(self._ddb.update_item(TableName=self._table, Key=key, UpdateExpression=expression,
                                           ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                                           ReturnValues="ALL_NEW")["Attributes"])

    def arrive(self, instance_id: str, run: str, step: str, parent: str, outputs: dict[str, Any]) -> dict[str, Any]:
        """`parent` has finished, with the steps map it ended with; the gate as it is now."""
        return self._update(_key(instance_id, run, step), [parent], parent, outputs, {})

    def register(self, instance_id: str, run: str, step: str, token: str, waits: list[str], present: list[str],
                 outputs: dict[str, Any]) -> dict[str, Any]:
        """The gated step waits with `token` for `waits`; those in `present` had finished before it came."""
        return self._update(_key(instance_id, run, step), present, step, outputs,
                            {"token": {"S": token}, "waits": {"L": [{"S": w} for w in waits]}})

    def claim(self, instance_id: str, run: str, step: str, token: str) -> dict[str, Any] | None:
        """The gate, if this caller is the one to release `token`; None when another caller did."""
        try:
            answer = self._ddb.update_item(
                TableName=self._table, Key=_key(instance_id, run, step), UpdateExpression="SET released = :t",
                ConditionExpression="#t = :t AND (attribute_not_exists(released) OR released <> :t)",
                ExpressionAttributeNames={"#t": "token"}, ExpressionAttributeValues={":t": {"S": token}},
                ReturnValues="ALL_NEW")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _gate(answer["Attributes"], with_outputs=True)

    def unclaim(self, instance_id: str, run: str, step: str, token: str) -> None:
        """Gives a claim back (its release could not be sent), so a later caller can send it."""
        try:
            self._ddb.update_item(TableName=self._table, Key=_key(instance_id, run, step), UpdateExpression="REMOVE released",
                                  ConditionExpression="released = :t", ExpressionAttributeValues={":t": {"S": token}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def for_instance(self, instance_id: str) -> list[dict[str, Any]]:
        return [_gate(item) for item in query_all(
            self._ddb, TableName=self._table, KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"gate#{instance_id}"}}, ConsistentRead=True)]

    def close_for_instance(self, instance_id: str) -> int:
        """Removes the instance's gates (its runs have ended: no token of theirs can be used); how many."""
        gates = self.for_instance(instance_id)
        for gate in gates:
            self._ddb.delete_item(TableName=self._table, Key={"pk": {"S": gate["pk"]}, "sk": {"S": gate["sk"]}})
        return len(gates)


def _gate(item: dict[str, Any], with_outputs: bool = False) -> dict[str, Any]:
    """The item as plain values: arrived and waits as lists; with_outputs, the maps written to it merged into
    `outputs` (a step's output is the same in every map that holds it; read only by who releases the gate)."""
    outputs: dict[str, Any] = {}
    for name in sorted(item) if with_outputs else ():
        if name.startswith(MAP_PREFIX):
            outputs.update(json.loads(item[name]["S"]))
    return {"pk": item["pk"]["S"], "sk": item["sk"]["S"],
            "arrived": sorted(item.get("arrived", {}).get("SS", [])),
            "waits": [w["S"] for w in item.get("waits", {}).get("L", [])],
            "token": item.get("token", {}).get("S"), "released": item.get("released", {}).get("S"),
            "outputs": outputs}

