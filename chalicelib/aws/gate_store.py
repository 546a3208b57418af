"""DynamoDB store of dependency gates (core/gates.py): one item per gated step of a run, in the triggers
table under `gate#<instance>`, where the steps it waits for arrive and its task token registers.

A machine step that is its own gate first reads it (consistently): when every step it waits for has
arrived it runs with what it read and writes nothing, since no arrival releases a token that never
registered. Otherwise, arrivals and the registration are single UpdateItems that return the item as it was
before them, so each caller knows whether its own write is the one that completed the pair (the token registered, every step
it waits for arrived): exactly one write does, and its caller releases the token; no second write claims
it. Each arrival is a member of a string set, so a repeated arrival (a retried Lambda) changes nothing.
A release that could not be sent is marked `unsent`, and a repeated arrival takes the mark over and sends
it. The outputs the gated step needs travel in the item: each arrival (and the registration) writes the
steps map it ended with as one JSON attribute (`m:<step>`), so a write costs one clause whatever the map's
size; the maps of one gate must fit in an item together (400 KB).
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
BATCH = 25  # BatchWriteItem's most requests per call


def _key(instance_id: str, run: str, step: str) -> dict[str, Any]:
    return {"pk": {"S": f"gate#{instance_id}"}, "sk": {"S": f"{run}#{step}"}}


class GateStore:
    def __init__(self, ddb: DynamoDBClient, table: str):
        self._ddb = ddb
        self._table = table

    def _update(self, key: dict[str, Any], arrived: list[str], writer: str, steps: dict[str, Any],
                extra_set: dict[str, Any], remove: str = "") -> dict[str, Any]:
        """Writes the arrivals, the writer's steps map and `extra_set`; the item as it was before."""
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
        if remove:
            expression += f" REMOVE {remove}"
        return self._ddb.update_item(TableName=self._table, Key=key, UpdateExpression=expression,
                                     ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                                     ReturnValues="ALL_OLD").get("Attributes") or {}

    def arrive(self, instance_id: str, run: str, step: str, parent: str, outputs: dict[str, Any]) -> dict[str, Any] | None:
        """`parent` has finished with the steps map `outputs`. The gate, with every output written to it, when
        this caller is the one to release its token: this arrival completed it, or it takes over a release
        that was not sent; else None."""
        key = _key(instance_id, run, step)
        before = _gate(self._update(key, [parent], parent, outputs, {}), with_outputs=True)
        if complete(before):
            # Completed before: whoever did released it, unless its send failed and it left the mark.
            return self._take_unsent(key, before["unsent"]) if before["unsent"] else None
        before["arrived"] = sorted({*before["arrived"], parent})
        if not complete(before):
            return None
        before["outputs"].update(outputs)
        return before

    def register(self, instance_id: str, run: str, step: str, token: str, waits: list[str], present: list[str],
                 outputs: dict[str, Any], *, runs_step: bool = False) -> dict[str, Any] | None:
        """The gated step waits with `token` for `waits`; those in `present` had finished before it came.
        `runs_step`: the token is the step's own task, which runs the step once its gate opens. The gate,
        with every output written to it, when it is complete now (the registering caller releases it); else
        None (the last arrival will)."""
        if runs_step:
            # A step that is its own gate comes after the dependency expected to finish last, so its gate is
            # usually complete as it comes: one consistent read then says so, and nothing is written. No
            # arrival can release it meanwhile (an arrival releases only a registered token): the read's
            # caller is the one to run the step. Only a gate still waiting takes the registering write.
            seen = self.read(instance_id, run, step)
            if set(waits) <= {*seen["arrived"], *present}:
                seen["outputs"].update(outputs)
                return {**seen, "token": token, "waits": list(waits), "runs_step": True, "unsent": None}
        extra = {"token": {"S": token}, "waits": {"L": [{"S": w} for w in waits]}}
        if runs_step:
            extra["runs_step"] = {"BOOL": True}
        # A release marked unsent was for an earlier token, whose task is gone: this token replaces it.
        before = _gate(self._update(_key(instance_id, run, step), present, step, outputs, extra, remove="unsent"),
                       with_outputs=True)
        gate = {**before, "token": token, "waits": list(waits), "runs_step": runs_step,
                "arrived": sorted({*before["arrived"], *present}), "unsent": None}
        if not complete(gate):
            return None
        gate["outputs"].update(outputs)
        return gate

    def mark_unsent(self, instance_id: str, run: str, step: str, token: str) -> None:
        """The release of `token` could not be sent: the next arrival (a retry of this Lambda) sends it."""
        try:
            self._ddb.update_item(TableName=self._table, Key=_key(instance_id, run, step),
                                  UpdateExpression="SET unsent = :t", ConditionExpression="#t = :t",
                                  ExpressionAttributeNames={"#t": "token"}, ExpressionAttributeValues={":t": {"S": token}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise  # else a new token replaced it: its registration releases it

    def _take_unsent(self, key: dict[str, Any], token: str) -> dict[str, Any] | None:
        try:
            answer = self._ddb.update_item(
                TableName=self._table, Key=key, UpdateExpression="REMOVE unsent",
                ConditionExpression="unsent = :t AND #t = :t", ExpressionAttributeNames={"#t": "token"},
                ExpressionAttributeValues={":t": {"S": token}}, ReturnValues="ALL_NEW")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None  # another repeat took it, or a new token replaced it
            raise
        return _gate(answer["Attributes"], with_outputs=True)

    def read(self, instance_id: str, run: str, step: str) -> dict[str, Any]:
        """The gate as it is now (an empty one when nothing has reached it), its maps merged into `outputs`."""
        item = self._ddb.get_item(TableName=self._table, Key=_key(instance_id, run, step), ConsistentRead=True)
        return _gate(item.get("Item") or {}, with_outputs=True)

    def outputs(self, instance_id: str, run: str, step: str) -> dict[str, Any]:
        """Every steps map written to the gate, merged (for a release too large to carry them itself)."""
        return self.read(instance_id, run, step)["outputs"]

    def for_instance(self, instance_id: str) -> list[dict[str, Any]]:
        return [_gate(item) for item in query_all(
            self._ddb, TableName=self._table, KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": f"gate#{instance_id}"}}, ConsistentRead=True)]

    def close_for_instance(self, instance_id: str) -> int:
        """Removes the instance's gates (its runs have ended: no token of theirs can be used); how many."""
        keys = list(query_all(self._ddb, TableName=self._table, KeyConditionExpression="pk = :p",
                              ExpressionAttributeValues={":p": {"S": f"gate#{instance_id}"}}, ConsistentRead=True,
                              ProjectionExpression="pk, sk"))
        for start in range(0, len(keys), BATCH):
            requests: list[Any] = [{"DeleteRequest": {"Key": k}} for k in keys[start:start + BATCH]]
            for attempt in range(8):
                left = self._ddb.batch_write_item(RequestItems={self._table: requests}).get("UnprocessedItems") or {}
                requests = left.get(self._table) or []
                if not requests:
                    break
                time.sleep(0.05 * 2 ** attempt)  # throttled: back off, as the SDKs advise
            else:
                raise RuntimeError(f"gates of {instance_id} not all removed: throttled")
        return len(keys)


def complete(gate: dict[str, Any]) -> bool:
    """Whether the gated step has registered and everything it waits for has arrived."""
    return gate["token"] is not None and set(gate["waits"]) <= set(gate["arrived"])


def _gate(item: dict[str, Any], with_outputs: bool = False) -> dict[str, Any]:
    """The item as plain values (an empty one for a missing item): arrived and waits as lists; with_outputs,
    the maps written to it merged into `outputs` (a step's output is the same in every map that holds it)."""
    outputs: dict[str, Any] = {}
    for name in sorted(item) if with_outputs else ():
        if name.startswith(MAP_PREFIX):
            outputs.update(json.loads(item[name]["S"]))
    return {"pk": item.get("pk", {}).get("S"), "sk": item.get("sk", {}).get("S"),
            "arrived": sorted(item.get("arrived", {}).get("SS", [])),
            "waits": [w["S"] for w in item.get("waits", {}).get("L", [])],
            "token": item.get("token", {}).get("S"), "unsent": item.get("unsent", {}).get("S"),
            "runs_step": bool(item.get("runs_step", {}).get("BOOL")), "outputs": outputs}
