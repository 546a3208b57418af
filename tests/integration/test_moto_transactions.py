"""The local runtime's TransactWriteItems (stepflow_local/moto_transactions.py) leaves exactly what moto's
own does, items and stream records alike, without copying the tables it names."""

from __future__ import annotations

import random
import uuid
from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError

from stepflow_local import moto_patches, moto_transactions

SEED = 20261201


@pytest.fixture()
def twins():
    """Two identical tables with streams: one written through the patch, one through moto's original."""
    moto_patches.apply()
    with moto.mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
        names = [f"twin-{side}-{uuid.uuid4().hex[:8]}" for side in ("patched", "moto")]
        for name in names:
            client.create_table(
                TableName=name, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "sk", "AttributeType": "N"}],
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        yield client, names
        for name in names:
            client.delete_table(TableName=name)


def _backend() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"]["us-east-1"]


def _operations(rng: random.Random, table: str) -> list[dict[str, Any]]:
    keys = {(rng.randrange(3), rng.randrange(8)) for _ in range(rng.randrange(1, 5))}
    ops: list[dict[str, Any]] = []
    for pk, sk in sorted(keys):
        key = {"pk": {"S": f"p{pk}"}, "sk": {"N": str(sk)}}
        kind = rng.randrange(4)
        if kind == 0:
            op = {"Put": {"TableName": table, "Item": {**key, "n": {"N": str(rng.randrange(100))}}}}
        elif kind == 1:
            op = {"Update": {"TableName": table, "Key": key, "UpdateExpression": "ADD n :one SET tag = :t",
                             "ExpressionAttributeValues": {":one": {"N": "1"}, ":t": {"S": rng.choice("xyz")}}}}
        elif kind == 2:
            op = {"Delete": {"TableName": table, "Key": key}}
        else:
            op = {"ConditionCheck": {"TableName": table, "Key": key, "ConditionExpression": "attribute_exists(pk)"}}
        if kind != 3 and rng.random() < 0.35:  # fails about half the time: everything is undone
            next(iter(op.values()))["ConditionExpression"] = rng.choice(
                ("attribute_exists(pk)", "attribute_not_exists(pk)"))
        ops.append(op)
    return ops


def _retarget(ops: list[dict[str, Any]], table: str) -> list[dict[str, Any]]:
    return [{kind: {**body, "TableName": table}} for op in ops for kind, body in op.items()]


def _state(client: Any, table: str) -> tuple[list[Any], list[Any]]:
    items = sorted((i["pk"]["S"], i["sk"]["N"], sorted(i.items()).__repr__())
                   for i in client.scan(TableName=table, ConsistentRead=True)["Items"])
    shard = _backend().tables[table].stream_shard
    records = [(r.record["eventName"], repr(r.record["dynamodb"]["Keys"]), repr(r.record["dynamodb"].get("NewImage")),
                repr(r.record["dynamodb"].get("OldImage"))) for r in shard.items]
    return items, records


def test_transactions_leave_what_moto_leaves_without_copying_their_tables(twins, monkeypatch):
    client, (patched, original) = twins
    from moto.dynamodb.models import DynamoDBBackend

    assert moto_transactions.patched()
    rng = random.Random(SEED)
    outcomes = {"committed": 0, "canceled": 0}
    tables = _backend().tables
    for _ in range(300):
        ops = _operations(rng, patched)
        answers = []
        for table in (patched, original):
            if table == original:
                monkeypatch.setattr(DynamoDBBackend, "transact_write_items",
                                    moto_transactions.ORIGINALS["DynamoDBBackend.transact_write_items"])
            before = tables[patched]
            try:
                client.transact_write_items(TransactItems=_retarget(ops, table))
                answers.append(("ok", None))
            except ClientError as exc:
                answers.append((exc.response["Error"]["Code"], exc.response.get("CancellationReasons")))
            finally:
                monkeypatch.undo()
            assert tables[patched] is before  # rolled back in place: the table was never swapped for a copy
        assert answers[0] == answers[1], ops
        outcomes["committed" if answers[0][0] == "ok" else "canceled"] += 1
        assert _state(client, patched) == _state(client, original)
    # Both kinds ran many times, and the streams hold what the committed transactions wrote.
    assert outcomes["committed"] > 60 and outcomes["canceled"] > 60, outcomes
    assert len(_state(client, patched)[1]) > 100


def test_a_transaction_naming_one_item_twice_is_refused_and_changes_nothing(twins):
    client, (table, _) = twins
    key = {"pk": {"S": "a"}, "sk": {"N": "1"}}
    client.put_item(TableName=table, Item={**key, "n": {"N": "1"}})
    before = _state(client, table)
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "b"}, "sk": {"N": "2"}}}},
            {"Update": {"TableName": table, "Key": key, "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "2"}}}},
            {"Delete": {"TableName": table, "Key": key}}])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert _state(client, table) == before


def test_the_item_level_rollback_is_in_place():
    from moto.dynamodb.models import DynamoDBBackend

    moto_patches.apply()
    assert "dynamodb_transactions" in moto_patches.applied() and moto_transactions.patched()
    assert DynamoDBBackend.transact_write_items is not moto_transactions.ORIGINALS["DynamoDBBackend.transact_write_items"]
