"""Validation reports every problem at once, with locations and hints, in a stable order."""

from __future__ import annotations

import json

import pytest

from chalicelib.core.loading import DefinitionTextError, load_definition_text
from chalicelib.core.model import Definition, Edge, GatewayStep, MachineStep
from chalicelib.core.validation import MAX_STEPS, parse_definition, validate_definition
from chalicelib.examples import bundled
from chalicelib.tasks.registry import default_registry

REGISTRY = default_registry()


def machine(step_id: str, **extra):
    return {"id": step_id, "type": "machine", "task_type": "data.set", "config": {"values": {"x": 1}}, **extra}


def issues_of(data):
    definition, issues = parse_definition(data)
    if definition is None:
        return [(i.code, i.location) for i in issues]
    return [(i.code, i.location) for i in validate_definition(definition, REGISTRY)]


@pytest.mark.parametrize("name", sorted(bundled()))
def test_bundled_examples_are_valid(name):
    from chalicelib import custom_tasks

    registry = default_registry()
    custom_tasks.register(registry)
    definition, issues = parse_definition(bundled()[name])
    assert issues == []
    assert validate_definition(definition, registry) == []


def test_every_problem_is_reported_in_one_pass_in_location_order():
    data = {
        "name": "broken",
        "steps": [
            machine("a"),
            machine("b", depends_on=["a", "ghost"]),
            {"id": "gw", "type": "gateway", "depends_on": ["b"]},
            machine("c", depends_on=["gw"], condition="amount >"),
            machine("d", depends_on=["gw"], condition="amount > 5"),
            {"id": "e", "type": "machine", "task_type": "nope.task", "depends_on": ["c", "d"]},
            machine("f", depends_on=["a"], condition="x == 1",
                    input_mappings=[{"from_step": "e", "from_field": "y", "to_field": "z"}]),
            machine("a"),
        ],
    }
    assert issues_of(data) == [
        ("unknown_step", "steps[1].depends_on[1]"),
        ("gateway_without_default", "steps[2]"),
        ("invalid_condition", "steps[3].condition"),
        ("unknown_task_type", "steps[5].task_type"),
        ("condition_not_on_gateway", "steps[6].condition"),
        ("mapping_not_upstream", "steps[6].input_mappings[0].from_step"),
        ("duplicate_step", "steps[7].id"),
    ]


def test_issues_are_sorted_by_step_position_numerically():
    steps = [machine(f"s{i}", depends_on=[f"missing{i}"]) for i in range(12)]
    locations = [loc for _, loc in issues_of({"name": "many", "steps": steps})]
    assert locations == [f"steps[{i}].depends_on[0]" for i in range(12)]


def test_cycle_is_reported_with_its_path():
    data = {"name": "loop", "steps": [machine("a", depends_on=["c"]), machine("b", depends_on=["a"]),
                                      machine("c", depends_on=["b"])]}
    definition, _ = parse_definition(data)
    issues = validate_definition(definition, REGISTRY)
    assert [i.code for i in issues] == ["cycle"]
    assert "a -> b -> c -> a" in issues[0].message or "c -> a -> b -> c" in issues[0].message


def test_schema_problems_name_the_field_and_drop_the_step_kind_tag():
    data = {"name": "x", "steps": [{"id": "a", "type": "machine", "task_type": "data.set",
                                    "retry": {"max_attempts": 0}, "depend_on": ["z"]}]}
    assert issues_of(data) == [
        ("extra_forbidden", "steps[0].depend_on"),
        ("greater_than_equal", "steps[0].retry.max_attempts"),
    ]


def test_unknown_step_type_gets_a_hint():
    definition, issues = parse_definition({"name": "x", "steps": [{"id": "a", "type": "robot"}]})
    assert definition is None
    assert issues[0].location == "steps[0]"
    assert "machine, human, gateway, timer, webhook, receive" in issues[0].hint


def test_config_is_checked_against_the_task_type_schema():
    data = {"name": "x", "steps": [{"id": "a", "type": "machine", "task_type": "data.set", "config": {}}]}
    assert issues_of(data) == [("invalid_config", "steps[0].config.values")]


def test_unknown_task_type_suggests_a_close_one():
    definition, _ = parse_definition({"name": "x", "steps": [{"id": "a", "type": "machine", "task_type": "data.sett"}]})
    issue = validate_definition(definition, REGISTRY)[0]
    assert issue.code == "unknown_task_type" and "data.set" in issue.hint


def test_mapping_from_a_field_the_step_cannot_produce():
    data = {"name": "x", "steps": [
        machine("a"),
        machine("b", depends_on=["a"], input_mappings=[{"from_step": "a", "from_field": "y", "to_field": "z"}]),
    ]}
    assert issues_of(data) == [("unknown_field", "steps[1].input_mappings[0].from_field")]


def test_edges_style_checks_initial_terminal_and_reachability():
    data = {
        "name": "x", "initial_step": "a", "terminal_steps": ["c"],
        "steps": [machine("a"), machine("b"), machine("c"), machine("lonely")],
        "edges": [{"source": "a", "target": "c"}, {"source": "b", "target": "c"}, {"source": "a", "target": "nowhere"}],
    }
    assert issues_of(data) == [
        ("unreachable", "steps[1]"),
        ("undeclared_end", "steps[3]"),
        ("unreachable", "steps[3]"),
        ("unknown_step", "edges[2].target"),
    ]


def test_gateway_branches_that_cross_parallel_work_are_refused_with_a_hint():
    # b runs in parallel with the gateway's branch and then feeds into it: no Step Functions shape fits.
    data = {"name": "x", "steps": [
        machine("a"), machine("b", depends_on=["a"]),
        {"id": "gw", "type": "gateway", "depends_on": ["a"]},
        machine("c", depends_on=["gw"], condition="x == 1"), machine("d", depends_on=["gw"]),
        machine("e", depends_on=["c", "b"]), machine("f", depends_on=["e", "d"]),
    ]}
    definition, _ = parse_definition(data)
    issues = validate_definition(definition, REGISTRY)
    assert [i.code for i in issues] == ["gateway_branch_entered_from_outside"]
    assert issues[0].hint


def test_too_many_steps():
    steps = [machine("s0")] + [machine(f"s{i}", depends_on=[f"s{i - 1}"]) for i in range(1, MAX_STEPS + 1)]
    assert ("too_many_steps", "steps") in issues_of({"name": "big", "steps": steps})


def test_python_objects_build_the_same_definition_as_json():
    built = Definition(
        name="approval",
        steps=[MachineStep(id="submit", task_type="data.set", config={"values": {"ok": True}}),
               GatewayStep(id="gw"), MachineStep(id="yes", task_type="util.log", config={"message": "y"}),
               MachineStep(id="no", task_type="util.log", config={"message": "n"})],
        edges=[Edge("submit", "gw"), Edge("gw", "yes", "ok == true"), Edge("gw", "no")],
        initial_step="submit",
    )
    assert validate_definition(built, REGISTRY) == []
    again, issues = parse_definition(built.model_dump(mode="json"))
    assert issues == [] and again == built


def test_yaml_and_json_text_both_load():
    assert load_definition_text('{"name": "x", "steps": []}')["name"] == "x"
    assert load_definition_text("name: x\nversion: 1.0\nsteps: []\n")["version"] == 1.0
    with pytest.raises(DefinitionTextError, match="line 2, column 8"):
        load_definition_text("name: x\nsteps: ]\n")
    with pytest.raises(DefinitionTextError, match="line"):
        load_definition_text("name: [unclosed")  # libyaml marks where the text ends
    with pytest.raises(DefinitionTextError):
        load_definition_text("- just a list")


def test_yaml_number_version_becomes_text():
    definition, _ = parse_definition({"name": "x", "version": 2.1, "steps": [machine("a")]})
    assert definition.version == "2.1"


def test_a_definition_whose_state_machine_exceeds_1_mib_is_refused_with_one_issue():
    from chalicelib.service.definitions import check

    # Configs stay out of the ASL, but conditions do not: each comparison becomes a guarded Choice rule.
    condition = " and ".join(["amount > 1"] * 66)  # just under the 1,000-character cap
    count = 140
    steps = [{"id": f"g{i}", "type": "gateway"} for i in range(count)] + [machine("end"), machine("done")]
    edges = [{"source": f"g{i}", "target": f"g{i + 1}" if i + 1 < count else "done", "condition": condition}
             for i in range(count)] + [{"source": f"g{i}", "target": "end"} for i in range(count)]
    definition, issues, asl = check({"name": "huge", "steps": steps, "edges": edges}, REGISTRY)
    assert definition is not None and asl is None
    assert [(i.code, i.location) for i in issues] == [("too_large", "definition")]
    assert "1,048,576" in issues[0].message


def test_the_size_limit_is_checked_with_the_function_arns_bound():
    from chalicelib.core.sizing import LONGEST_FUNCTION_ARN, MAX_DEFINITION_BYTES
    from chalicelib.service.definitions import check
    from tests.oversize import only_too_large_when_bound, sizes

    long_arns = {"StepRunnerFunctionArn": LONGEST_FUNCTION_ARN, "TaskRegistrarFunctionArn": LONGEST_FUNCTION_ARN}
    data = only_too_large_when_bound(long_arns, machines=300)
    unbound, bound = sizes(data, long_arns)
    assert unbound <= MAX_DEFINITION_BYTES < bound
    definition, issues, asl = check(data, REGISTRY, long_arns)
    assert definition is not None and asl is None
    assert [(i.code, i.location) for i in issues] == [("too_large", "definition")]
    assert f"{bound:,} bytes" in issues[0].message
    # Unknown ARNs count as the longest possible: the same verdict.
    assert [i.code for i in check(data, REGISTRY)[1]] == ["too_large"]
    # Bound to values no longer than the placeholders, the same machine fits: the bindings are what decide.
    short = {name: "x" * len("${" + name + "}") for name in long_arns}
    definition, issues, asl = check(data, REGISTRY, short)
    assert issues == [] and asl is not None and "${StepRunnerFunctionArn}" in json.dumps(asl)


def test_a_decided_field_names_the_earliest_step_upstream_that_sets_it():
    def sets(step_id, *deps):
        return {"id": step_id, "type": "machine", "task_type": "data.set", "config": {"values": {"x": 1}},
                "depends_on": list(deps)}

    # 'late' sets x too but is declared after 'early'; 'aside' sets x and does not run before the form.
    steps = [sets("early"), sets("aside"), sets("late", "early"),
             {"id": "ask", "type": "human", "depends_on": ["late"],
              "form_schema": {"type": "object", "properties": {"x": {"type": "integer"}}}},
             {"id": "end", "type": "machine", "task_type": "util.log", "config": {"message": "m"},
              "depends_on": ["ask", "aside"]}]
    definition, _ = parse_definition({"name": "d", "steps": steps})
    issues = [i for i in validate_definition(definition, REGISTRY) if i.code == "decided_field"]
    assert [(i.location, "step 'early'" in i.message) for i in issues] == [("steps[3].form_schema.properties.x", True)]
    data = {"name": "d", "steps": steps, "input_schema": {"type": "object", "properties": {"x": {"type": "integer"}}}}
    definition, _ = parse_definition(data)
    issues = [i for i in validate_definition(definition, REGISTRY) if i.code == "decided_field"]
    assert len(issues) == 1 and "the input_schema" in issues[0].message


def receive(step_id: str, **extra):
    return {"id": step_id, "type": "receive", "event_type": "order.paid", **extra}


def test_a_malformed_receive_step_is_reported_where_it_is():
    # No event type, a bad one, and correlation keys that take nothing (or no path) from the instance data.
    assert issues_of({"name": "r", "steps": [machine("a"), {"id": "wait", "type": "receive", "depends_on": ["a"]}]}) \
        == [("missing", "steps[1].event_type")]
    assert issues_of({"name": "r", "steps": [receive("wait", event_type="paid now")]}) \
        == [("string_pattern_mismatch", "steps[0].event_type")]
    definition, _ = parse_definition({"name": "r", "steps": [
        machine("a"), receive("literal", correlation_key="order_id", depends_on=["a"]),
        receive("bad_path", correlation_key="{{ order..id }}", depends_on=["literal"]),
        receive("secret", correlation_key="{{ secrets.api_key }}", depends_on=["bad_path"])]})
    found = validate_definition(definition, REGISTRY)
    assert [(i.code, i.location) for i in found] == [("invalid_correlation_key", "steps[1].correlation_key"),
                                                    ("invalid_correlation_key", "steps[2].correlation_key"),
                                                    ("invalid_correlation_key", "steps[3].correlation_key")]
    assert "{{ order_id }}" in found[0].hint
    assert issues_of({"name": "r", "steps": [machine("a"), receive("ok", correlation_key="{{ customer.id }}-{{ n }}",
                                                                    depends_on=["a"])]}) == []


def test_a_receive_step_may_not_keep_its_event_where_the_data_is_already_decided():
    data = {"name": "r", "input_schema": {"type": "object", "properties": {"paid": {"type": "object"}}},
            "steps": [receive("paid")]}
    assert issues_of(data) == [("decided_field", "steps[0]")]


def test_a_duration_of_another_type_is_a_validation_error_not_a_crash():
    from chalicelib.core.validation import parse_definition

    for bad in ({}, [], 1.5):
        _, issues = parse_definition({"name": "d", "steps": [{"id": "h", "type": "human", "due_in": bad}]})
        assert any("due_in" in str(issue) for issue in issues), (bad, issues)
