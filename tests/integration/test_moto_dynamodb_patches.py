"""The local runtime's DynamoDB patches change what moto costs, never what it answers: plain JSON item
responses (moto_dynamodb.py), parsed-once update expressions (moto_expressions.py), item-level transaction
rollback (moto_transactions.py) and untracked item objects."""

from __future__ import annotations

import copy
import json
import random
import time
import uuid
from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError

from stepflow_local import moto_dynamodb, moto_expressions, moto_patches, moto_transactions
from stepflow_local.moto_contract import ORIGINALS

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
                ("pk", "S"), ("sk", "N"), ("status", "S"))],
            GlobalSecondaryIndexes=[{"IndexName": "by_status", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                                                   {"AttributeName": "sk", "KeyType": "RANGE"}]}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        yield client, table
        client.delete_table(TableName=table)


def _item(rng: random.Random, pk: str | None = None, sk: int | None = None) -> dict[str, Any]:
    return {"pk": {"S": pk or f"p{rng.randrange(4)}"}, "sk": {"N": str(rng.randrange(60) if sk is None else sk)},
            "status": {"S": rng.choice(("open", "done"))}, "n": {"N": str(rng.randrange(1000))},
            "tags": {"SS": ["a", f"t{rng.randrange(5)}"]}, "nested": {"M": {
                "list": {"L": [{"S": "x"}, {"N": "1.5"}, {"BOOL": True}, {"NULL": True}, {"M": {}}, {"L": []}]},
                "text": {"S": "héllo \"quoted\" \u2603"}}}}


def _everything(client: Any, table: str) -> list[dict[str, Any]]:
    return sorted(client.scan(TableName=table, ConsistentRead=True)["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["N"]))


def _stream_records(table: str) -> int:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return len(dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[table].stream_shard.items)


# ------------------------------------------------------------------------------------- plain responses


def test_item_responses_are_the_generic_serializers_bytes(ddb, monkeypatch):
    """Every item response the fast path writes is byte for byte what moto's serializer writes."""
    client, table = ddb
    compared: dict[str, int] = {}
    generic_only: list[str] = []
    original = ORIGINALS["DynamoResult.execute_result"]

    def both(self: Any, context: Any) -> Any:
        operation = context.operation_model
        generic = original(self, context)
        body = moto_dynamodb.plain_body(str(operation.name), self.result, list(operation.output_shape.members))
        if body is None:
            generic_only.append(str(operation.name))
        else:
            assert body == generic[2], operation.name
            compared[str(operation.name)] = compared.get(str(operation.name), 0) + 1
        return generic

    from moto.dynamodb.responses import DynamoResult

    monkeypatch.setattr(DynamoResult, "execute_result", both)
    rng = random.Random(SEED)
    for _ in range(40):
        client.put_item(TableName=table, Item=_item(rng))
    key = {"pk": {"S": "p1"}, "sk": {"N": "7"}}
    client.put_item(TableName=table, Item=_item(rng, "p1", 7))
    client.put_item(TableName=table, Item=_item(rng, "p1", 7), ReturnValues="ALL_OLD")
    client.get_item(TableName=table, Key=key)
    client.get_item(TableName=table, Key={"pk": {"S": "nobody"}, "sk": {"N": "0"}})
    client.get_item(TableName=table, Key=key, ReturnConsumedCapacity="TOTAL")
    client.update_item(TableName=table, Key=key, UpdateExpression="SET n = n + :one, #s = :s",
                       ExpressionAttributeNames={"#s": "status"},
                       ExpressionAttributeValues={":one": {"N": "1"}, ":s": {"S": "done"}}, ReturnValues="ALL_NEW")
    client.update_item(TableName=table, Key=key, UpdateExpression="REMOVE tags", ReturnValues="UPDATED_OLD")
    client.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p1"}},
                 Limit=3)
    client.query(TableName=table, IndexName="by_status", KeyConditionExpression="#s = :s",
                 ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "open"}},
                 ReturnConsumedCapacity="INDEXES", ScanIndexForward=False)
    client.scan(TableName=table, Limit=5)
    client.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": key}},
                                             {"Get": {"TableName": table, "Key": {"pk": {"S": "x"}, "sk": {"N": "1"}}}}],
                              ReturnConsumedCapacity="TOTAL")
    client.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD")
    # Binary values: the generic serializer base64-encodes them, so these go its way and still round-trip.
    blob = {"pk": {"S": "bin"}, "sk": {"N": "1"}, "b": {"B": b"\x00\xffdata"}, "bs": {"BS": [b"\x01", b"\x02"]}}
    client.put_item(TableName=table, Item=blob)
    found = client.get_item(TableName=table, Key={"pk": {"S": "bin"}, "sk": {"N": "1"}})["Item"]
    assert found["b"] == {"B": b"\x00\xffdata"} and sorted(found["bs"]["BS"]) == [b"\x01", b"\x02"]

    assert set(compared) >= {"PutItem", "GetItem", "UpdateItem", "Query", "Scan", "TransactGetItems", "DeleteItem"}
    assert "GetItem" in generic_only  # the binary item


def test_plain_body_refuses_what_it_cannot_write_exactly():
    members = ["Items", "Count", "ScannedCount", "LastEvaluatedKey", "ConsumedCapacity"]
    plain = {"Items": [{"a": {"S": "x"}}], "Count": 1, "ScannedCount": 1}
    assert moto_dynamodb.plain_body("Query", plain, members) is not None
    for odd in ({"Items": [{"a": {"B": b"x"}}], "Count": 1},  # binary
                {"Items": [{"a": {"S": 1}}], "Count": 1},  # a number where a string belongs
                {"Items": [{"a": {"X": "x"}}], "Count": 1},  # an unknown type
                {"Items": [{"a": {"S": "x", "N": "1"}}], "Count": 1},  # two types in one value
                {"Items": [], "Count": True},  # a bool where a count belongs
                {"Items": [], "Unexpected": 1},  # a key the output does not have
                {"Items": [], "ConsumedCapacity": {"CapacityUnits": "1"}}):
        assert moto_dynamodb.plain_body("Query", odd, members) is None, odd
    assert moto_dynamodb.plain_body("DescribeTable", {"Table": {}}, ["Table"]) is None


# ---------------------------------------------------------------------------------- update expressions


EXPRESSIONS = [
    "SET #s0 = :s0, #s1 = :s1 REMOVE #r0",
    "SET a.b[2].c = if_not_exists(a.b[2].c, :zero) + :one",
    "SET l = list_append(if_not_exists(l, :empty), :more), n = n - :one",
    "ADD counter :one, tags :set DELETE other :set",
    "REMOVE a[1], a[3], b.c SET d = :d",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_copied_expression_trees_are_what_deepcopy_makes(expression):
    from moto.dynamodb.parsing.ast_nodes import Node
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    def shape(node: Any, parent: Any) -> Any:
        assert node.parent is parent
        return (type(node), node.type, [shape(c, node) if isinstance(c, Node) else c for c in node.children or []])

    tree = UpdateExpressionParser.make(expression)
    assert UpdateExpressionParser.make(expression) is tree  # parsed once
    ours, theirs = moto_expressions.copy_tree(tree), copy.deepcopy(tree)
    assert shape(ours, None) == shape(theirs, None) == shape(tree, None)
    assert ours is not tree and ours.children[0] is not tree.children[0]


def test_updates_leave_the_cached_tree_as_parsed(ddb):
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    client, table = ddb
    expression = "SET n = if_not_exists(n, :zero) + :one, #s = :s REMOVE tags"
    before = repr(vars(UpdateExpressionParser.make(expression)))
    for value in range(3):
        client.update_item(TableName=table, Key={"pk": {"S": "u"}, "sk": {"N": "1"}}, UpdateExpression=expression,
                           ExpressionAttributeNames={"#s": "status"},
                           ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}, ":s": {"S": f"v{value}"}})
    assert repr(vars(UpdateExpressionParser.make(expression))) == before
    item = client.get_item(TableName=table, Key={"pk": {"S": "u"}, "sk": {"N": "1"}})["Item"]
    assert item["n"] == {"N": "3"} and item["status"] == {"S": "v2"}
    with pytest.raises(ClientError):  # a syntax error is still an error, every time
        client.update_item(TableName=table, Key={"pk": {"S": "u"}, "sk": {"N": "1"}}, UpdateExpression="SET = :x",
                           ExpressionAttributeValues={":x": {"S": "x"}})


# --------------------------------------------------------------------------------------- transactions


def _transaction(table: str, *, fail: bool) -> list[dict[str, Any]]:
    check = "attribute_not_exists(pk)" if fail else "attribute_exists(pk)"
    return [
        {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}, "sk": {"N": "1"}, "status": {"S": "open"}}}},
        {"Update": {"TableName": table, "Key": {"pk": {"S": "p1"}, "sk": {"N": "1"}},
                    "UpdateExpression": "SET #s = :s, n = :n", "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":s": {"S": "moved"}, ":n": {"N": "-1"}}}},
        {"Update": {"TableName": table, "Key": {"pk": {"S": "fresh"}, "sk": {"N": "9"}},  # creates the item
                    "UpdateExpression": "SET #s = :s", "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":s": {"S": "open"}}}},
        {"Delete": {"TableName": table, "Key": {"pk": {"S": "p2"}, "sk": {"N": "2"}}}},
        {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "p3"}, "sk": {"N": "3"}},
                            "ConditionExpression": check}},
    ]


def _seed(client: Any, table: str) -> None:
    rng = random.Random(SEED)
    for i in range(1, 4):
        client.put_item(TableName=table, Item=_item(rng, f"p{i}", i))
    for _ in range(30):
        client.put_item(TableName=table, Item=_item(rng))


def _by_status(client: Any, table: str, status: str) -> list[dict[str, Any]]:
    return client.query(TableName=table, IndexName="by_status", KeyConditionExpression="#s = :s",
                        ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": status}})["Items"]


def test_a_cancelled_transaction_changes_nothing(ddb):
    client, table = ddb
    _seed(client, table)
    indexed = {s: _by_status(client, table, s) for s in ("open", "done", "moved")}  # builds the index first
    before, records = _everything(client, table), _stream_records(table)

    with pytest.raises(ClientError) as failed:
        client.transact_write_items(TransactItems=_transaction(table, fail=True))
    assert failed.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in failed.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "None", "ConditionalCheckFailed"]

    assert _everything(client, table) == before
    assert {s: _by_status(client, table, s) for s in indexed} == indexed  # the query index too
    assert _stream_records(table) == records  # and no stream record of writes that never happened


def test_a_refused_transaction_changes_nothing(ddb):
    client, table = ddb
    _seed(client, table)
    before, records = _everything(client, table), _stream_records(table)
    twice = _transaction(table, fail=False)[:3] + [
        {"Delete": {"TableName": table, "Key": {"pk": {"S": "p1"}, "sk": {"N": "1"}}}}]  # p1/1 a second time
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(TransactItems=twice)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert _everything(client, table) == before and _stream_records(table) == records


def test_a_transaction_that_succeeds_applies_every_action(ddb):
    client, table = ddb
    _seed(client, table)
    before, records = {(i["pk"]["S"], i["sk"]["N"]) for i in _everything(client, table)}, _stream_records(table)
    client.transact_write_items(TransactItems=_transaction(table, fail=False))
    after = {(i["pk"]["S"], i["sk"]["N"]): i for i in _everything(client, table)}
    assert set(after) == (before | {("new", "1"), ("fresh", "9")}) - {("p2", "2")}
    assert after[("p1", "1")]["status"] == {"S": "moved"} and after[("p1", "1")]["n"] == {"N": "-1"}
    assert [i["pk"]["S"] for i in _by_status(client, table, "moved")] == ["p1"]
    assert _stream_records(table) > records  # the stream keeps what a transaction that succeeded wrote


def test_a_transaction_copies_the_items_it_names_not_the_table(ddb, monkeypatch):
    """The work of a transaction follows its items: a bigger table copies no more (counted, not timed)."""
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    client, table = ddb
    _seed(client, table)
    copied: list[str] = []
    item_copy, table_copy = Item.__deepcopy__, getattr(Table, "__deepcopy__", None)
    monkeypatch.setattr(Item, "__deepcopy__", lambda self, memo: (copied.append("item"), item_copy(self, memo))[1])
    monkeypatch.setattr(Table, "__deepcopy__", lambda self, memo: copied.append("table"), raising=False)
    assert table_copy is None  # moto copies tables with the default deepcopy, which the patch skips

    def copies_per_transaction(items: int) -> int:
        rng = random.Random(items)
        for n in range(items):
            client.put_item(TableName=table, Item=_item(rng, f"bulk{n}", n))
        copied.clear()
        with pytest.raises(ClientError):
            client.transact_write_items(TransactItems=_transaction(table, fail=True))
        return len(copied)

    small = copies_per_transaction(10)
    assert "table" not in copied
    assert copies_per_transaction(300) == small <= 2 * len(_transaction(table, fail=True))
    assert moto_transactions.patched()


# ------------------------------------------------------------------------------------------ tracking


def test_item_objects_are_not_kept_after_they_are_replaced(ddb):
    from moto.dynamodb.models.dynamo_type import Item
    from moto.stepfunctions.models import StateMachine

    client, table = ddb
    tracked = len(Item.instances_tracked)
    rng = random.Random(SEED)
    for _ in range(50):
        client.put_item(TableName=table, Item=_item(rng, "same", 1))
        client.update_item(TableName=table, Key={"pk": {"S": "same"}, "sk": {"N": "1"}}, UpdateExpression="SET n = :n",
                           ExpressionAttributeValues={":n": {"N": "2"}})
    assert len(Item.instances_tracked) == tracked and moto_dynamodb.items_untracked()
    # Other services' models are tracked as moto tracks them.
    machines = len(StateMachine.instances_tracked)
    sfn = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    sfn.create_state_machine(name=f"m{uuid.uuid4().hex[:8]}", roleArn="arn:aws:iam::123456789012:role/r",
                             definition='{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}')
    assert len(StateMachine.instances_tracked) == machines + 1


def test_the_patches_are_in_place_once():
    moto_patches.apply()
    assert {"dynamodb_results", "dynamodb_expressions", "dynamodb_transactions", "dynamodb_untracked",
            "interpreter_clients"} <= moto_patches.applied()
    assert moto_dynamodb.plain_results() and moto_expressions.patched() and moto_transactions.patched()
    moto_patches.apply()  # idempotent: nothing is wrapped twice
    assert moto_dynamodb.plain_results() and moto_expressions.patched()


def test_the_interpreter_shares_one_client_per_service(ddb):
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    from stepflow_local import moto_interpreter

    assert moto_interpreter.clients_shared()
    assert lambda_eval_utils.boto_client_for is boto_client.boto_client_for
    first = boto_client.boto_client_for(region="us-east-1", service="lambda", state_credentials=None)
    assert boto_client.boto_client_for("us-east-1", "lambda") is first
    assert boto_client.boto_client_for("us-east-1", "sqs") is not first


def test_executions_of_one_definition_share_its_parsed_program(monkeypatch):
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from stepflow_local import moto_interpreter

    moto_patches.apply()
    assert moto_interpreter.programs_shared()
    # A definition no other test uses (its Comment): parses are counted for it alone, whatever else the
    # worker process runs meanwhile (the parse cache is process-wide).
    definition = json.dumps({"Comment": uuid.uuid4().hex, "StartAt": "P", "States": {
        "P": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 0, "End": True}}})
    parses: list[str] = []
    original_parse = AmazonStateLanguageParser.parse

    def counted(text: str) -> Any:
        if text == definition:
            parses.append(text)
        return original_parse(text)

    monkeypatch.setattr(AmazonStateLanguageParser, "parse", staticmethod(counted))
    with moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # type: ignore[call-overload]
        sfn = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
        machine = sfn.create_state_machine(name=f"m{uuid.uuid4().hex[:8]}", definition=definition,
                                           roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
        parses.clear()  # creating the machine checks its definition (a parse of its own)
        arns = [sfn.start_execution(stateMachineArn=machine, name=f"e{n}", input=json.dumps({"n": n}))["executionArn"]
                for n in range(6)]
        outputs = []
        deadline = time.monotonic() + 120
        for arn in arns:
            while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            outputs.append(json.loads(described["output"]))
    assert outputs == [{"n": n} for n in range(6)]  # each execution its own data, from one shared program
    assert len(parses) == 1  # six executions, one parse
