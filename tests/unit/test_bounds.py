"""Bounded reading of client text and user schemas: depth, values, aliases, RE2 patterns, references.
Work is counted in CPU time of this thread, never wall time."""

from __future__ import annotations

import time

import pytest
import yaml

from chalicelib.core.bounds import MAX_DEPTH, BoundedSafeLoader, TooDeep, check_json_text, load_yaml
from chalicelib.core.schemas import MAX_OPERATIONS, schema_errors, schema_problems
from tests.integration.test_hostile_input import ALIAS_BOMB, DEEP_YAML_BLOCK, REDOS_PATTERN, REDOS_VALUE


def cpu(call):
    started = time.thread_time()
    result = call()
    return time.thread_time() - started, result


def test_json_depth_is_counted_outside_strings():
    check_json_text("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    check_json_text('{"a": "' + "[" * 1000 + '"}')  # brackets inside a string are text
    check_json_text('["\\"[[[[", 1]')  # an escaped quote does not end the string
    with pytest.raises(TooDeep, match="deeper than 64"):
        check_json_text("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    spent, _ = cpu(lambda: pytest.raises(TooDeep, check_json_text, "[" * 100_000))
    assert spent < 0.1


def test_json_with_too_many_values_is_refused():
    with pytest.raises(TooDeep, match="values"):
        check_json_text("[" + "0," * 60_000 + "0]")


@pytest.mark.parametrize("loader", [BoundedSafeLoader, None], ids=["pure-python", "libyaml"])
def test_yaml_bombs_stop_while_composing(loader):
    def load(text):
        if loader is None:
            return load_yaml(text)
        instance = loader(text)
        try:
            return instance.get_single_data()
        finally:
            instance.dispose()

    for text in (ALIAS_BOMB, DEEP_YAML_BLOCK, "a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)):
        spent, _ = cpu(lambda t=text: pytest.raises(TooDeep, load, t))
        assert spent < 0.1
    many = "a: &a 1\n" + "".join(f"k{i}: *a\n" for i in range(101))
    with pytest.raises(TooDeep, match="aliases"):
        load(many)
    assert load("a: &x {k: [1, 2]}\nb: *x\nc: {<<: *x, d: 1}\n") == {
        "a": {"k": [1, 2]}, "b": {"k": [1, 2]}, "c": {"k": [1, 2], "d": 1}}
    with pytest.raises(yaml.YAMLError):
        load("a: [1,\n b: 'x")


def test_patterns_run_on_re2_in_linear_time():
    schema = {"type": "string", "pattern": REDOS_PATTERN}
    spent, errors = cpu(lambda: schema_errors(schema, REDOS_VALUE * 1000))
    assert spent < 0.1 and len(errors) == 1 and "does not match" in errors[0].message
    assert len(errors[0].message) < 200  # the value is quoted shortened
    keyed = {"type": "object", "patternProperties": {REDOS_PATTERN: {"type": "integer"}}, "additionalProperties": False}
    spent, errors = cpu(lambda: schema_errors(keyed, {REDOS_VALUE: 1, "aaa": "x"}))
    assert spent < 0.1
    found = sorted((tuple(e.absolute_path), e.message) for e in errors)
    assert found[0][0] == () and found[0][1].endswith("does not match any of the regexes: '^(a+)+$'")
    assert found[1] == (("aaa",), "'x' is not of type 'integer'")
    unevaluated = {"patternProperties": {"^a": {}}, "unevaluatedProperties": False}
    assert [e.message for e in schema_errors(unevaluated, {"ab": 1, "b": 2})] == [
        "Unevaluated properties are not allowed ('b' unexpected)"]
    assert schema_errors({"type": "string", "format": "regex"}, "(a)\\1")[0].message.endswith("is not a 'regex'")


def test_unique_items_is_linear_and_keeps_json_equality():
    spent, errors = cpu(lambda: schema_errors({"uniqueItems": True}, [{"i": i} for i in range(20_000)]))
    assert spent < 0.5 and errors == []
    assert schema_errors({"uniqueItems": True}, [1, 1.0]) and not schema_errors({"uniqueItems": True}, [1, True])
    assert schema_errors({"uniqueItems": True}, [{"a": 1, "b": 2}, {"b": 2, "a": 1}])


def test_work_per_check_is_capped():
    schema = {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "integer"}}}}
    spent, errors = cpu(lambda: schema_errors(schema, [{"a": 1}] * 200_000))
    assert [e.validator for e in errors] == ["budget"] and f"{MAX_OPERATIONS:,}" in errors[0].message
    assert spent < 0.5  # the budget, not the length of the value, bounds the work


def test_schemas_are_refused_at_registration_for_what_would_hurt_at_run_time():
    problems = schema_problems({"properties": {"a": {"pattern": "(a)\\1"}, "b": {"$ref": "http://x/y"}},
                                "patternProperties": {"(?=x)": {}}})
    assert [(p.code, p.where) for p in problems] == [
        ("unsupported_pattern", "patternProperties"), ("unsupported_pattern", "properties/a/pattern"),
        ("unsupported_ref", "properties/b/$ref")]
    assert [p.code for p in schema_problems({"$ref": "#"})] == ["invalid_schema"]
    assert schema_problems({"properties": {"a": {"const": {"pattern": "(a)\\1"}}}}) == []  # data, not a schema
    assert schema_problems({"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}}) == []


def test_a_reference_is_never_fetched():
    errors = schema_errors({"properties": {"a": {"$ref": "https://example.com/s.json"}}}, {"a": 1})
    assert [e.validator for e in errors] == ["$ref"] and "does not contain" in errors[0].message
