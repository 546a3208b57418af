"""Hostile request bodies through the API: each is refused with a 4xx after bounded work (CPU time of the
request counted, not wall time), the answer carries no internals, and the service answers afterwards."""

from __future__ import annotations

import gc
import json
import time

import pytest

from chalicelib.core.bounds import MAX_DEPTH
from tests.leaks import LEAKS, leaks

# The request runs in the test's thread (chalice.test.Client calls the view directly), while moto runs
# executions on threads of its own: the calling thread's CPU time is the request's work, whatever else runs.
CPU_LIMIT = 0.1

REDOS_PATTERN = "^(a+)+$"
REDOS_VALUE = "a" * 88 + "b"  # Python's re takes hours on this; each extra "a" doubles it

ALIAS_BOMB = "\n".join(
    ["a: &a [x,x,x,x,x,x,x,x,x,x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)]
    + ["name: bomb", "steps: [*i]"])
DEEP_JSON = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a":' * 10_000 + "1" + "}" * 10_000
DEEP_YAML_FLOW = "name: deep\nsteps: " + "[" * 10_000 + "]" * 10_000
DEEP_YAML_BLOCK = "name: deep\nsteps:\n" + "".join(f"{'  ' * i}- \n" for i in range(1, 200))


def refused(api, method: str, path: str, raw: str, content_type: str = "application/json",
            statuses: tuple[int, ...] = (400, 422)) -> object:
    """Sends one hostile body: a 4xx within CPU_LIMIT, no internals in the answer, and the service still up."""
    # A full garbage collection of a long test worker's heap (moto's state) can itself take 0.1 s and
    # would be billed to whichever request triggers it: measure the request's own work.
    gc.collect()
    gc.disable()
    try:
        started = time.thread_time()
        if method == "POST":
            status, body = api.post(path, raw=raw, content_type=content_type)
        else:
            raise AssertionError(method)
        spent = time.thread_time() - started
    finally:
        gc.enable()
    assert status in statuses, (status, str(body)[:500])
    assert spent < CPU_LIMIT, f"{method} {path} took {spent:.3f} s of CPU"
    assert leaks(body) == [], body
    assert api.get("/health")[0] == 200
    return body


def test_the_leak_check_finds_a_traceback_and_a_path():
    # The scan every hostile answer goes through must be able to fail.
    assert leaks({"detail": 'Traceback (most recent call last):\n  File "/work/app.py", line 1'}) == list(LEAKS)
    assert leaks({"detail": "the JSON nests deeper than 64 levels"}) == []


@pytest.mark.parametrize("path", ["/definitions", "/definitions/validate", "/instances", "/definitions/x/run",
                                  "/tasks/t-1/complete", "/instances/i-1/events", "/callbacks/k-1"])
@pytest.mark.parametrize("raw", [DEEP_JSON, DEEP_OBJECT], ids=["array", "object"])
def test_json_nested_ten_thousand_deep_is_refused(api, path, raw):
    body = refused(api, "POST", path, raw, statuses=(400,))
    assert f"deeper than {MAX_DEPTH}" in body["detail"]


def test_json_at_the_depth_bound_is_read_and_one_level_more_is_not(api):
    def definition(depth: int) -> dict:
        # The definition, steps, the step, config and values are five levels; the value fills the rest.
        nested: dict = {"keep": True}
        for _ in range(depth - 6):
            nested = {"n": nested}
        return {"name": "ok", "steps": [
            {"id": "s", "type": "machine", "task_type": "data.set", "config": {"values": {"n": nested}}}]}

    status, body = api.post("/definitions/validate", definition(MAX_DEPTH))
    assert status == 200 and body["valid"] is True, body
    status, body = api.post("/definitions/validate", definition(MAX_DEPTH + 1))
    assert status == 400 and f"deeper than {MAX_DEPTH}" in body["detail"], body


@pytest.mark.parametrize("path", ["/definitions", "/definitions/validate"])
@pytest.mark.parametrize("raw", [ALIAS_BOMB, DEEP_YAML_FLOW, DEEP_YAML_BLOCK], ids=["alias-bomb", "flow", "block"])
def test_hostile_yaml_is_refused_before_it_is_built(api, path, raw):
    body = refused(api, "POST", path, raw, content_type="application/x-yaml", statuses=(400,))
    assert "YAML" in body["detail"]


def test_yaml_with_a_few_aliases_still_loads(api):
    text = ("name: anchored\nsteps:\n  - {id: a, type: machine, task_type: data.set, config: &cfg {values: {x: 1}}}\n"
            "  - {id: b, type: machine, task_type: data.set, config: *cfg, depends_on: [a]}\n")
    status, body = api.post("/definitions/validate", raw=text, content_type="application/x-yaml")
    assert status == 200 and body["valid"] is True, body


def redos_schema() -> dict:
    return {"type": "object", "properties": {"code": {"type": "string", "pattern": REDOS_PATTERN}}}


def test_a_backtracking_pattern_in_input_schema_answers_at_once(api):
    status, body = api.post("/definitions", {"name": "redos_start", "input_schema": redos_schema(), "steps": [
        {"id": "s", "type": "machine", "task_type": "data.set", "config": {"values": {"ok": True}}}]})
    assert status in (200, 201), body
    raw = json.dumps({"definition_name": "redos_start", "input_data": {"code": REDOS_VALUE}})
    body = refused(api, "POST", "/instances", raw, statuses=(422,))
    assert [i["location"] for i in body["detail"]["issues"]] == ["input_data.code"]
    assert "does not match '^(a+)+$'" in body["detail"]["issues"][0]["message"]
    status, started = api.post("/instances", {"definition_name": "redos_start", "input_data": {"code": "aaaa"}})
    assert status == 201, started


def test_a_backtracking_pattern_in_a_form_schema_answers_at_once(api):
    status, body = api.post("/definitions", {"name": "redos_form", "steps": [
        {"id": "review", "type": "human", "assignee": "bob", "form_schema": redos_schema()}]})
    assert status in (200, 201), body
    status, started = api.post("/instances", {"definition_name": "redos_form", "input_data": {}})
    assert status == 201, started
    task = api.one_task(f"instance_id={started['id']}")
    raw = json.dumps({"output_data": {"code": REDOS_VALUE}, "completed_by": "bob"})
    body = refused(api, "POST", f"/tasks/{task['id']}/complete", raw, statuses=(422,))  # a well-formed body that breaks the form: 422
    assert [i["location"] for i in body["detail"]["issues"]] == ["output_data.code"]
    status, done = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"code": "aa"}, "completed_by": "bob"})
    assert status == 200 and done["status"] == "completed", done


@pytest.mark.parametrize(("schema", "code"), [
    ({"type": "string", "pattern": "^(a)\\1$"}, "unsupported_pattern"),
    ({"type": "object", "patternProperties": {"^(?!x)": {}}}, "unsupported_pattern"),
    ({"type": "object", "properties": {"a": {"$ref": "https://example.com/schema.json"}}}, "unsupported_ref"),
    ({"$defs": {"loop": {"allOf": [{"$ref": "#/$defs/loop"}]}}, "$ref": "#/$defs/loop"}, "invalid_schema"),
])
def test_schemas_that_cannot_be_run_safely_are_refused_at_registration(api, schema, code):
    definition = {"name": "bad_schema", "input_schema": schema, "steps": [
        {"id": "s", "type": "machine", "task_type": "data.set", "config": {"values": {}}}]}
    status, body = api.post("/definitions/validate", definition)
    assert status == 200 and body["valid"] is False, body
    assert [(i["code"], i["location"]) for i in body["issues"]] == [(code, "input_schema")], body
    status, body = api.post("/definitions", definition)
    assert status == 422 and leaks(body) == [], body
