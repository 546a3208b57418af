"""Compiled condition rules behave like evaluate() in moto's Step Functions interpreter, and lint clean."""

import functools
import json
import random
import time
import uuid
from typing import Any

import boto3
import moto
import pytest
from statelint.linter import Linter

from chalicelib.core.conditions import evaluate, parse_condition, to_choice_rule

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/stepflow-test"
POLL_SECONDS = 0.05  # never poll describe_execution faster than this
# moto interprets the execution in this process: its work is bounded in CPU seconds of this process (the
# case machine takes ~10 s of them), which a busy machine stretches in wall time but does not add to.
CPU_BUDGET_SECONDS = 60
HANG_SECONDS = 300  # wall time, only against an execution that hangs

CONDITIONS = [
    # numbers
    "amount > 1000",
    "amount >= 1000",
    "amount < 1000",
    "amount <= 1000",
    "amount == 1000",
    "amount != 1000",
    "amount == 999.5",
    "amount > -5.5",
    "-1 < amount",
    "1000 <= amount",
    "amount == 1e3",
    # booleans and truthiness
    "approved",
    "approved == true",
    "approved == false",
    "approved != true",
    "not approved",
    "!approved",
    # strings
    "name == 'alice'",
    'name != "alice"',
    "name > 'b'",
    "name >= 'Bob'",
    "name < 'bob'",
    "name <= ''",
    "name == ''",
    "name == 'é'",
    "'m' < name",
    "name == 'it\\'s'",
    # null
    "n == null",
    "n != null",
    "status == null",
    # paths
    "items[0] == 'a'",
    "items[1] == 'a'",
    "items[0] == null",
    "items[0] != 'a'",
    "grid[1][0] == 3",
    "grid[0][1] > 1",
    "nested.x == 5",
    "nested.x >= '5'",
    "nested.x.y",
    "nested.x == null",
    "order.not == 1",
    # combinations
    "amount > 1000 and approved",
    "amount > 1000 or approved",
    "amount > 1000 and approved or name == 'alice'",
    "not (amount > 1000 or status == 'open')",
    "(amount > 1000 || !approved) && status != 'closed'",
    "not not amount > 1000",
    "not (name != 'alice')",
    "status == 'open' and (amount < 0 or amount >= 1000) and not (n == null)",
]

MISSING = object()

POOLS = {
    "amount": [MISSING, 1000, 1001, 999.5, 1000.0, -5, 0, -5.5, "1001", True, False, None, [1001], {"a": 1}],
    "approved": [MISSING, True, False, 1, 0, "true", None],
    "name": [MISSING, "alice", "Bob", "", "bob", "b", "it's", "é", "zed", 5, None],
    "status": [MISSING, "open", "closed", "OPEN", None, 0],
    "n": [MISSING, None, 0, False, ""],
    "items": [MISSING, [], ["a"], ["b", "a"], "ab", {"0": "a"}, [None], [["a"]]],
    "grid": [MISSING, [[1, 2], [3, 4]], [[1, 1]], [3, [3]], "grid", [[None, "2"], [3.0]]],
    "nested": [MISSING, {"x": 5}, {"x": "5"}, {"x": "6"}, {}, 5, {"x": None}, {"x": {"y": True}}, {"x": {"y": 1}}],
    "order": [MISSING, {"not": 1}, {"not": True}, {}, None],
}

DESIGNED = [
    {},
    {
        "amount": 1001,
        "approved": True,
        "name": "alice",
        "status": "open",
        "n": None,
        "items": ["a"],
        "grid": [[1, 2], [3, 4]],
        "nested": {"x": 5},
        "order": {"not": 1},
    },
    {
        "amount": 1000,
        "approved": False,
        "name": "Bob",
        "status": "closed",
        "n": 0,
        "items": ["b", "a"],
        "grid": [[1, 1]],
        "nested": {"x": {"y": True}},
    },
    {
        "amount": "1001",
        "approved": 1,
        "name": 5,
        "status": None,
        "n": False,
        "items": "ab",
        "grid": "grid",
        "nested": 5,
        "order": {"not": True},
    },
    {"amount": True, "approved": "true", "name": None, "items": {"0": "a"}, "nested": {"x": None}},
    {"amount": 999.5, "approved": None, "name": "", "items": [None], "nested": {"x": "5"}},
    {"amount": -5.5, "name": "é", "status": "OPEN", "items": [], "nested": {}},
    {"amount": 1000.0, "name": "it's", "status": "open", "n": "", "nested": {"x": "6"}},
]


def _random_cases(count, seed=20240611):
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        case = {}
        for key in sorted(POOLS):
            value = rng.choice(POOLS[key])
            if value is not MISSING:
                case[key] = value
        cases.append(case)
    return cases


DATA_CASES = DESIGNED + _random_cases(24)


def build_machine(rules):
    """A Map over $.cases whose item processor chains one Choice per rule.

    Each Choice sends its rule to a Pass recording true and its Default to a
    Pass recording false (under $.results.cN), then moves to the next rule.
    One execution covers every (condition, data) pair: moto re-parses the
    definition for each execution, so many executions would be much slower.
    """
    states: dict[str, dict[str, Any]] = {}
    for i, rule in enumerate(rules):
        after = f"Check{i + 1}" if i + 1 < len(rules) else "Report"
        states[f"Check{i}"] = {
            "Type": "Choice",
            "Choices": [{**rule, "Next": f"Yes{i}"}],
            "Default": f"No{i}",
        }
        for name, result in ((f"Yes{i}", True), (f"No{i}", False)):
            states[name] = {"Type": "Pass", "Result": result, "ResultPath": f"$.results.c{i}", "Next": after}
    states["Report"] = {"Type": "Pass", "OutputPath": "$.results", "End": True}
    return {
        "Comment": "condition conformance",
        "StartAt": "EachCase",
        "States": {
            "EachCase": {
                "Type": "Map",
                "ItemsPath": "$.cases",
                "MaxConcurrency": 1,
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Check0", "States": states},
                "End": True,
            }
        },
    }


@pytest.fixture
def aws_credentials(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)


def _memoise_moto_jsonpath(monkeypatch):
    # Speed only: moto re-parses every JSONPath each time a Choice or Pass
    # evaluates it (~3 ms apiece), which is most of this test's run time.
    # jsonpath_ng ASTs are not mutated by find(), so caching cannot change a
    # result; stepflow_local/moto_patches.py does the same for the local
    # runtime. If moto moves these names the test still runs, just slower.
    try:
        from moto.stepfunctions.parser.asl.component.common.path import result_path
        from moto.stepfunctions.parser.asl.utils import json_path
    except ImportError:
        return
    for module in (json_path, result_path):
        parse = getattr(module, "parse", None)
        if callable(parse) and not hasattr(parse, "cache_info"):
            monkeypatch.setattr(module, "parse", functools.lru_cache(maxsize=None)(parse))


@pytest.fixture
def sfn(aws_credentials, monkeypatch):
    _memoise_moto_jsonpath(monkeypatch)
    with moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name=REGION)


def run_cases(sfn, definition, items):
    """Run one execution over all items; returns one {"cN": bool} dict per item, in order."""
    arn = sfn.create_state_machine(
        name=f"conditions-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]
    execution_arn = sfn.start_execution(
        stateMachineArn=arn, name=f"cases-{uuid.uuid4().hex[:12]}", input=json.dumps({"cases": items})
    )["executionArn"]
    cpu_deadline = time.process_time() + CPU_BUDGET_SECONDS
    wall_deadline = time.monotonic() + HANG_SECONDS
    while True:
        time.sleep(POLL_SECONDS)
        desc = sfn.describe_execution(executionArn=execution_arn)
        if desc["status"] != "RUNNING":
            break
        assert time.process_time() < cpu_deadline, "execution still running after its CPU budget"
        assert time.monotonic() < wall_deadline, f"execution still running after {HANG_SECONDS} s"
    assert desc["status"] == "SUCCEEDED", desc
    outputs = json.loads(desc["output"])
    assert len(outputs) == len(items)
    return outputs


def test_generated_machine_passes_statelint():
    definition = build_machine([to_choice_rule(parse_condition(c)) for c in CONDITIONS])
    assert Linter.validate(definition) == []


def test_every_condition_is_exercised_both_ways():
    # Guards against a vacuous conformance test: each condition must be true
    # for some data case and false for another.
    for text in CONDITIONS:
        expr = parse_condition(text)
        outcomes = {evaluate(expr, data) for data in DATA_CASES}
        assert outcomes == {True, False}, text


def test_choice_rules_match_evaluate_on_moto(sfn):
    exprs = [parse_condition(c) for c in CONDITIONS]
    definition = build_machine([to_choice_rule(e) for e in exprs])
    outputs = run_cases(sfn, definition, [{"data": data} for data in DATA_CASES])

    mismatches = []
    for data, output in zip(DATA_CASES, outputs, strict=True):
        for i, (text, expr) in enumerate(zip(CONDITIONS, exprs, strict=True)):
            expected = evaluate(expr, data)
            if output[f"c{i}"] is not expected:
                mismatches.append(f"{text!r} on {data!r}: moto={output[f'c{i}']} evaluate={expected}")
    assert not mismatches, "\n".join(mismatches)


def test_custom_data_path_on_moto(sfn):
    expr = parse_condition("amount > 1000 and not (tier == null)")
    definition = build_machine([to_choice_rule(expr, "$.instance.vars")])
    assert Linter.validate(definition) == []
    cases: list[dict[str, Any]] = [{"amount": 2000, "tier": "gold"}, {"amount": 2000, "tier": None}, {"amount": 10}, {}]
    outputs = run_cases(sfn, definition, [{"instance": {"vars": data}} for data in cases])
    assert [o["c0"] for o in outputs] == [evaluate(expr, data) for data in cases] == [True, False, False, False]


def test_moto_quirk_field_after_index_is_a_list(sfn):
    # Why the language rejects `items[0].name`: moto resolves $.x[0].y to a
    # one-element list, so a StringEquals on it is false even when the value
    # matches. If this starts failing, moto was fixed and the restriction in
    # conditions.py could be lifted.
    var = "$.data.items[0].name"
    definition = build_machine(
        [
            {"And": [{"Variable": var, "IsPresent": True}, {"Variable": var, "IsString": True}]},
            {"Variable": var, "StringEquals": "x"},
        ]
    )
    outputs = run_cases(sfn, definition, [{"data": {"items": [{"name": "x"}]}}])
    assert outputs == [{"c0": False, "c1": False}]
