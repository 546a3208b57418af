"""The local runtime's query index (stepflow_local/moto_index.py) answers exactly as moto's own Table.query."""

from __future__ import annotations

import inspect
import random
import uuid
from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError

from stepflow_local import moto_index, moto_patches, moto_transactions

STATUSES = ("open", "done", "gone")
SEED = 20261130


@pytest.fixture()
def ddb():
    moto_patches.apply()
    with moto.mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
        table = f"things-{uuid.uuid4().hex[:8]}"  # the session's local runtime may share this mock
        client.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in (
                ("pk", "S"), ("sk", "N"), ("status", "S"), ("created", "S"), ("owner", "S"), ("due", "N"))],
            GlobalSecondaryIndexes=[
                {"IndexName": "by_status", "Projection": {"ProjectionType": "ALL"},  # hash + range
                 "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                               {"AttributeName": "created", "KeyType": "RANGE"}]},
                {"IndexName": "by_owner", "Projection": {"ProjectionType": "KEYS_ONLY"},  # hash only
                 "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}]},
                {"IndexName": "by_due", "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["n"]},
                 "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},  # sparse: only items with `due`
                               {"AttributeName": "due", "KeyType": "RANGE"}]},
            ])
        yield client, table
        client.delete_table(TableName=table)


def _item(rng: random.Random) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": f"p{rng.randrange(6)}"}, "sk": {"N": str(rng.randrange(40))},
                            "status": {"S": rng.choice(STATUSES)}, "n": {"N": str(rng.randrange(1000))}}
    # Few distinct values, so that index keys tie and the table key decides the order.
    item["created"] = {"S": f"2026-0{rng.randrange(1, 4)}-{rng.randrange(10, 13)}"}
    if rng.random() < 0.7:
        item["owner"] = {"S": rng.choice(("ann", "bob", "cy"))}
    if rng.random() < 0.5:
        item["due"] = {"N": str(rng.randrange(-5, 30))}
    if rng.random() < 0.5:  # attributes of every other type, for projections and the response's serialisation
        item["doc"] = {"M": {"a": {"N": str(rng.randrange(9))}, "b": {"L": [{"S": "x"}, {"BOOL": rng.random() < 0.5},
                                                                             {"NULL": True}]}}}
        item["tags"] = {"SS": rng.sample(["red", "green", "blue", "grey"], rng.randrange(1, 4))}
        item["blob"] = {"B": bytes([rng.randrange(256) for _ in range(5)])}
    return item


def _key(rng: random.Random) -> dict[str, Any]:
    return {"pk": {"S": f"p{rng.randrange(6)}"}, "sk": {"N": str(rng.randrange(40))}}


def _update(rng: random.Random) -> dict[str, Any]:
    choice = rng.randrange(4)
    values: dict[str, Any] = {":s": {"S": rng.choice(STATUSES)}}
    if choice == 0:
        return {"UpdateExpression": "SET #s = :s", "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": values}
    if choice == 1:
        return {"UpdateExpression": "REMOVE due, #o", "ExpressionAttributeNames": {"#o": "owner"}}
    if choice == 2:
        return {"UpdateExpression": "SET due = :d, #s = :s, created = :c", "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {**values, ":d": {"N": str(rng.randrange(30))},
                                              ":c": {"S": f"2026-0{rng.randrange(1, 4)}-11"}}}
    return {"UpdateExpression": "SET #o = :o", "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":o": {"S": rng.choice(("ann", "dee"))}}}


def _write(ddb: Any, table: str, rng: random.Random) -> None:
    kind = rng.random()
    try:
        if kind < 0.45:
            ddb.put_item(TableName=table, Item=_item(rng))
        elif kind < 0.65:
            ddb.update_item(TableName=table, Key=_key(rng), **_update(rng))
        elif kind < 0.75:
            ddb.delete_item(TableName=table, Key=_key(rng))
        else:
            ops: list[dict[str, Any]] = []
            for key in {repr(k): k for k in (_key(rng) for _ in range(rng.randrange(1, 4)))}.values():
                kind = rng.randrange(3)
                if kind == 0:
                    ops.append({"Update": {"TableName": table, "Key": key, **_update(rng)}})
                elif kind == 1:
                    ops.append({"Delete": {"TableName": table, "Key": key}})
                else:
                    ops.append({"Put": {"TableName": table, "Item": {**_item(rng), **key}}})
            if rng.random() < 0.3:  # a condition that fails half the time: the whole transaction is undone
                first = next(iter(ops[0].values()))
                first["ConditionExpression"] = "attribute_exists(pk)"
            ddb.transact_write_items(TransactItems=ops)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in {"TransactionCanceledException", "ConditionalCheckFailedException"}


def _query(table: str, rng: random.Random) -> dict[str, Any]:
    index = rng.choice((None, "by_status", "by_owner", "by_due"))
    request: dict[str, Any] = {"TableName": table, "ScanIndexForward": rng.random() < 0.5,
                               "Limit": rng.choice((2, 3, 5, 8, 50))}
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    if index is None:
        condition, values[":h"] = "pk = :h", {"S": f"p{rng.randrange(7)}"}
        range_attr, range_value = "sk", lambda: {"N": str(rng.randrange(-2, 42))}
    elif index == "by_owner":
        condition, values[":h"] = "#h = :h", {"S": rng.choice(("ann", "bob", "cy", "dee", "eve"))}
        names["#h"] = "owner"
        range_attr = None
    else:
        condition, values[":h"] = "#h = :h", {"S": rng.choice(STATUSES)}
        names["#h"] = "status"
        if index == "by_status":
            range_attr, range_value = "created", lambda: {"S": f"2026-0{rng.randrange(1, 4)}-{rng.randrange(9, 14)}"}
        else:
            range_attr, range_value = "due", lambda: {"N": str(rng.randrange(-6, 32))}
    if range_attr and rng.random() < 0.7:
        names["#r"] = range_attr
        op = rng.choice(("=", "<", "<=", ">", ">=", "between", "begins_with"))
        values[":a"] = range_value()
        if op == "between":
            values[":b"] = range_value()
            # BETWEEN with its bounds in order (DynamoDB refuses the other way round).
            values[":a"], values[":b"] = sorted((values[":a"], values[":b"]), key=lambda v: (
                float(v["N"]) if "N" in v else v["S"]))
            condition += " AND #r BETWEEN :a AND :b"
        elif op == "begins_with":
            if range_attr != "created":
                op = "="
                condition += " AND #r = :a"
            else:
                values[":a"] = {"S": rng.choice(("2026-0", "2026-02", "2026-03-1", "2026-01-12", "2027"))}
                condition += " AND begins_with(#r, :a)"
        else:
            condition += f" AND #r {op} :a"
    if rng.random() < 0.3:
        request["FilterExpression"] = "n < :n"
        values[":n"] = {"N": str(rng.randrange(1000))}
    if rng.random() < 0.4:  # top-level names (answered by the index) or a nested path (by moto's Item.project)
        aliases = {"#s": "status", "#d": "doc", "#t": "tags", "#b": "blob", "#m": "b"}  # some are reserved words
        wanted = rng.sample(["pk", "sk", "#s", "n", "#d", "#t", "#b", "created"], rng.randrange(1, 5))
        if rng.random() < 0.3:
            wanted = [w for w in wanted if w != "#d"] + ["#d.#m"]
        request["ProjectionExpression"] = ", ".join(wanted)
        names.update({a: n for a, n in aliases.items() if a in request["ProjectionExpression"]})
    if index:
        request["IndexName"] = index
    request.update(KeyConditionExpression=condition, ExpressionAttributeValues=values)
    if names:
        request["ExpressionAttributeNames"] = names
    return request


def _pages(ddb: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of the query, following LastEvaluatedKey (what a listing's paging does); string sets
    sorted (DynamoDB sets have no order, and moto's own projection reorders them)."""
    pages, start = [], None
    while True:
        page = ddb.query(**request, **({"ExclusiveStartKey": start} if start else {}))
        page.pop("ResponseMetadata", None)
        for item in page.get("Items", []):
            if "tags" in item:
                item["tags"]["SS"].sort()
        pages.append(page)
        start = page.get("LastEvaluatedKey")
        if not start or len(pages) > 200:
            return pages


def test_indexed_queries_answer_exactly_as_moto_does(ddb, monkeypatch):
    ddb, table = ddb
    from moto.dynamodb.models.table import Table

    rng = random.Random(SEED)
    scans = []
    original_all_items = Table.all_items
    monkeypatch.setattr(Table, "all_items", lambda self: scans.append(1) or original_all_items(self))
    compared = pages_seen = 0
    for step in range(400):
        _write(ddb, table, rng)
        if step % 4:
            continue
        for _ in range(2):
            request = _query(table, rng)
            before = len(scans)
            indexed = _pages(ddb, request)
            assert len(scans) == before, f"an indexed query walked the table: {request}"
            with moto_index.unindexed():
                expected = _pages(ddb, request)
            assert indexed == expected, request
            compared += 1
            pages_seen += len(indexed)
    # The run exercised what it claims: many queries, many of them over several pages.
    assert compared == 200 and pages_seen > 2 * compared


def test_a_rolled_back_transaction_leaves_the_index_as_the_items(ddb):
    ddb, table = ddb
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "status": {"S": "open"},
                                        "created": {"S": "x"}})
    by_status = {"TableName": table, "IndexName": "by_status", "KeyConditionExpression": "#s = :s",
                 "ExpressionAttributeNames": {"#s": "status"}}

    def keys(status: str) -> list[str]:
        found = ddb.query(**by_status, ExpressionAttributeValues={":s": {"S": status}})["Items"]
        return [i["pk"]["S"] for i in found]

    assert keys("open") == ["a"]  # builds the index
    with pytest.raises(ClientError, match="TransactionCanceled"):
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}},
                        "UpdateExpression": "SET #s = :d", "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":d": {"S": "done"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": "b"}, "sk": {"N": "1"}, "status": {"S": "done"},
                                                  "created": {"S": "y"}},
                     "ConditionExpression": "attribute_exists(pk)"}}])
    assert keys("open") == ["a"] and keys("done") == []


def test_moto_query_internals_have_the_shape_we_patched(ddb):
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    assert "query_index" in moto_patches.applied() and moto_index.indexed()
    moto_patches.apply()  # idempotent
    assert getattr(Table.put_item, "__stepflow_indexed__", False)
    assert getattr(DynamoDBBackend.update_item, "__stepflow_indexed__", False)
    # update_item changes the stored item in place; moto's own transaction rolls back by swapping in deep
    # copies (the local runtime's rolls back by item: stepflow_local/moto_transactions.py).
    assert "UpdateExpressionExecutor(" in inspect.getsource(moto_index.ORIGINALS["DynamoDBBackend.update_item"])
    source = inspect.getsource(moto_transactions.ORIGINALS.get("DynamoDBBackend.transact_write_items",
                                                               DynamoDBBackend.transact_write_items))
    assert "copy.deepcopy(" in source and "self.tables[table_name] = original_table_state[table_name]" in source
    # The order and the paging the index reproduces.
    query = inspect.getsource(moto_index.ORIGINALS["Table.query"])
    assert "self.sorted_items(" in query and "reached_length_limit = len(results) == limit" in query
    assert "self._item_comes_before_dct(" in query and "results = copy.deepcopy(results)" in query


EVERY_TYPE = [
    {"pk": {"S": "a"}, "sk": {"N": "1"}, "s": {"S": ""}, "n": {"N": "-0.5e3"}, "b": {"B": b"\x00\xffbytes"},
     "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"\x01", b"\x02"]}, "yes": {"BOOL": True},
     "no": {"BOOL": False}, "null": {"NULL": True}, "empty_l": {"L": []}, "empty_m": {"M": {}},
     "deep": {"M": {"l": {"L": [{"M": {"b": {"B": b"in"}, "ss": {"SS": ["z"]}}}, {"L": [{"N": "7"}]}, {"NULL": True}]},
                    "s": {"S": "ünïcode"}}}},
    {"pk": {"S": "b"}, "sk": {"N": "2"}, "only": {"S": "plain"}},
]


def test_attribute_values_leave_moto_as_its_generic_serialiser_writes_them(ddb):
    """The direct routes of stepflow_local/moto_attribute_values.py write byte for byte what moto's own
    dynamo_to_dict and shape-driven serialiser write, for every attribute type and nesting."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.serialize import XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model
    from moto.dynamodb import responses
    from moto.dynamodb.models import dynamodb_backends

    from stepflow_local import moto_attribute_values

    ddb, table = ddb
    assert moto_attribute_values.patched()
    for item in EVERY_TYPE:
        ddb.put_item(TableName=table, Item=item)
    stored = list(dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[table].all_items())
    result = {"Items": [i.attrs for i in stored], "Count": 2, "ScannedCount": 2,
              "LastEvaluatedKey": {"pk": {"S": "b"}, "sk": {"N": "2"}}}
    plain = moto_attribute_values.ORIGINALS["dynamo_to_dict"](result)
    assert responses.dynamo_to_dict(result) == plain
    # Every value takes the direct route (none is handed back to the generic walk).
    assert all(moto_attribute_values._wire(v, str) is not None for item in plain["Items"] for v in item.values())
    operation = get_service_model("dynamodb").operation_model("Query")

    def body(serializer: Any) -> str:
        return serializer(operation_model=operation, pretty_print=False,
                          value_picker=XFormedAttributePicker()).serialize(plain)["body"]

    ours = body(get_serializer_class("dynamodb", "json"))
    assert ours == body(moto_attribute_values.ORIGINALS["serializer"])
    # And what a client reads back is what it wrote.
    items = ddb.query(TableName=table, KeyConditionExpression="pk = :a", ExpressionAttributeValues={
        ":a": {"S": "a"}})["Items"]
    assert items == [EVERY_TYPE[0]]
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "b"}, "sk": {"N": "2"}})["Item"] == EVERY_TYPE[1]
