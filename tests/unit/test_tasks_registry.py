"""Task registry, StepError naming, config validation and templating."""

from __future__ import annotations

import dataclasses
import json

import pytest
from jsonschema import Draft202012Validator

from chalicelib.tasks import templating
from chalicelib.tasks.errors import COMMON_ERRORS, StepError, error_name_problem, is_valid_error_name
from chalicelib.tasks.registry import (
    ConfigIssue,
    TaskContext,
    TaskRegistry,
    TaskType,
    UnknownTaskType,
    default_registry,
)

BUILTIN_IDS = ["aws.eventbridge.put", "aws.lambda.invoke", "aws.s3.get", "aws.s3.put", "aws.sqs.send", "data.assert",
               "data.set", "http.request", "json.transform", "json.validate", "notify.email", "notify.slack",
               "notify.sns", "util.log", "util.sleep", "workflow.start"]
MANIFEST_KEYS = {"id", "name", "category", "description", "inputSchema", "outputSchema", "configSchema", "errors",
                 "examples"}


def ctx(config=None, data=None, **kwargs) -> TaskContext:
    return TaskContext(step_id="step1", execution_id="exec-1", config=config or {}, input=data or {}, **kwargs)


def echo_registry() -> TaskRegistry:
    registry = TaskRegistry()

    @registry.task(
        "test.echo",
        config_schema={
            "type": "object",
            "properties": {"n": {"type": "integer", "maximum": 10}, "label": {"type": "string", "pattern": "^x"}},
            "additionalProperties": False,
        },
    )
    def echo(c: TaskContext):
        return {"config": c.config}

    return registry


# --------------------------------------------------------------------------- StepError


@pytest.mark.parametrize(
    "name", ["HttpStatusError", "Stepflow.TemplateError", "a", "A_b.c9", "x" * 64, "Statesman", "LambdaError"]
)
def test_valid_error_names(name):
    assert is_valid_error_name(name)
    err = StepError(name, "boom")
    assert err.error == name
    assert err.message == "boom"
    assert str(err) == "boom"


@pytest.mark.parametrize(
    "name",
    ["", "1abc", "_x", "has-dash", "has space", "x" * 65, "States.Timeout", "States.ALL", "Lambda.Unknown", None, 3],
)
def test_invalid_error_names(name):
    assert not is_valid_error_name(name)
    assert error_name_problem(name)
    with pytest.raises(ValueError):
        StepError(name, "boom")


def test_as_lambda_exception_has_the_error_name_as_class_name():
    err = StepError("HttpStatusError", "GET https://x answered HTTP 500")
    exc = err.as_lambda_exception()
    assert type(exc).__name__ == "HttpStatusError"
    assert str(exc) == "GET https://x answered HTTP 500"
    assert isinstance(exc, Exception)
    assert not isinstance(exc, StepError)
    # One class per name: repeated failures share a type.
    assert type(StepError("HttpStatusError", "other").as_lambda_exception()) is type(exc)
    dotted = StepError("Stepflow.InvalidOutput", "bad").as_lambda_exception()
    assert type(dotted).__name__ == "Stepflow.InvalidOutput"
    assert err.to_dict() == {"error": "HttpStatusError", "cause": "GET https://x answered HTTP 500"}


def test_step_error_message_defaults_to_name():
    assert str(StepError("Custom.Failure")) == "Custom.Failure"


# --------------------------------------------------------------------------- registration


def test_decorator_registers_and_returns_the_function():
    registry = TaskRegistry()

    @registry.task("billing.charge", name="Charge", category="billing", errors=("CardDeclined",))
    def charge(c):
        """Charges the customer's card."""
        return {"charged": True}

    assert charge(ctx()) == {"charged": True}
    task_type = registry.get("billing.charge")
    assert task_type.handler is charge
    assert task_type.errors == ("CardDeclined",)
    assert registry.ids() == ["billing.charge"]
    assert "billing.charge" in registry
    assert len(registry) == 1
    manifest = registry.manifest("billing.charge")
    assert set(manifest) == MANIFEST_KEYS
    assert manifest["name"] == "Charge"
    assert manifest["category"] == "billing"
    assert manifest["description"] == "Charges the customer's card."
    assert manifest["errors"] == ["CardDeclined"]
    assert manifest["configSchema"] == {"type": "object"}


def test_name_defaults_to_id():
    registry = TaskRegistry()
    registry.task("a.b")(lambda c: {})
    assert registry.manifest("a.b")["name"] == "a.b"


def test_duplicate_registration_is_refused():
    registry = TaskRegistry()
    registry.task("dup.task")(lambda c: {})
    with pytest.raises(ValueError, match="already registered"):
        registry.task("dup.task")(lambda c: {})
    with pytest.raises(ValueError):
        registry.register(TaskType(id="dup.task", handler=lambda c: {}))


def test_unknown_task_type():
    registry = TaskRegistry()
    with pytest.raises(UnknownTaskType) as info:
        registry.get("nope.nothing")
    assert isinstance(info.value, KeyError)
    assert "nope.nothing" in str(info.value)
    with pytest.raises(KeyError):
        registry.validate_config("nope.nothing", {})
    with pytest.raises(KeyError):
        registry.run("nope.nothing", ctx())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id": "bad id"},
        {"id": ".leading"},
        {"id": "x" * 129},
        {"id": "ok.id", "errors": ("States.Timeout",)},
        {"id": "ok.id", "errors": ("bad-name",)},
        {"id": "ok.id", "config_schema": {"type": "not-a-type"}},
        {"id": "ok.id", "output_schema": {"minimum": "zero"}},
    ],
)
def test_invalid_task_types_are_refused(kwargs):
    with pytest.raises(ValueError):
        TaskType(handler=lambda c: {}, **kwargs)


def test_default_registry_is_new_each_time():
    first, second = default_registry(), default_registry()
    assert first is not second
    assert first.ids() == BUILTIN_IDS
    first.task("extra.only_here")(lambda c: {})
    assert "extra.only_here" not in second


def test_builtin_manifests():
    manifests = default_registry().manifests()
    assert [m["id"] for m in manifests] == BUILTIN_IDS
    for manifest in manifests:
        assert set(manifest) == MANIFEST_KEYS
        assert manifest["name"] and manifest["description"] and manifest["category"]
        for key in ("inputSchema", "outputSchema", "configSchema"):
            Draft202012Validator.check_schema(manifest[key])
        assert all(is_valid_error_name(e) for e in manifest["errors"])
        json.dumps(manifest)
    by_id = {m["id"]: m for m in manifests}
    assert by_id["http.request"]["errors"] == [
        "HttpStatusError",
        "HttpTimeout",
        "HttpConnectionError",
        "HttpResponseTooLarge",
    ]
    assert by_id["data.assert"]["errors"] == ["Stepflow.AssertionFailed"]
    assert by_id["util.log"]["configSchema"]["required"] == ["message"]


def test_manifests_are_copies():
    registry = default_registry()
    registry.manifest("util.log")["configSchema"]["required"].append("oops")
    assert registry.manifest("util.log")["configSchema"]["required"] == ["message"]


# --------------------------------------------------------------------------- validate_config


def test_validate_config_collects_every_issue_in_stable_order():
    registry = echo_registry()
    config = {"zzz": 1, "n": 11, "label": "nope"}
    issues = registry.validate_config("test.echo", config)
    assert issues == registry.validate_config("test.echo", dict(reversed(list(config.items()))))
    assert [i.path for i in issues] == ["config", "config.label", "config.n"]
    assert "zzz" in issues[0].message
    assert all(isinstance(i, ConfigIssue) for i in issues)
    assert issues[2].to_dict() == {"path": "config.n", "message": "11 is greater than the maximum of 10"}


def test_validate_config_points_required_properties_at_the_field():
    issues = default_registry().validate_config("http.request", {"method": "GET"})
    assert issues == [ConfigIssue("config.url", "is required")]


def test_validate_config_nested_paths():
    issues = default_registry().validate_config(
        "http.request", {"url": "https://example.com", "expect_status": [200, "x", 700]}
    )
    assert [i.path for i in issues] == ["config.expect_status[1]", "config.expect_status[2]"]


def test_validate_config_accepts_placeholders_where_values_come_at_run_time():
    registry = default_registry()
    assert registry.validate_config("util.sleep", {"seconds": "{{ delay }}"}) == []
    assert registry.validate_config("util.log", {"message": "hi", "level": "{{ level }}"}) == []
    assert registry.validate_config("http.request", {"url": "{{ base }}/orders/{{ id }}"}) == []
    # An embedded placeholder always yields a string: that is still not a number.
    issues = registry.validate_config("util.sleep", {"seconds": "{{ delay }}s"})
    assert [i.path for i in issues] == ["config.seconds"]


def test_validate_config_reports_malformed_placeholders():
    issues = default_registry().validate_config(
        "data.set", {"values": {"a": "{{ }}", "b": ["ok {{ x }}", "{{ x..y }}"]}}
    )
    assert [i.path for i in issues] == ["config.values.a", "config.values.b[1]"]
    assert issues[0].message == "empty placeholder"
    assert "x..y" in issues[1].message


def test_validate_config_rejects_non_objects():
    registry = default_registry()
    assert registry.validate_config("data.set", ["x"]) == [ConfigIssue("config", "config must be an object")]
    assert registry.validate_config("util.log", None) == [ConfigIssue("config.message", "is required")]


def test_check_config_hook_runs_after_the_schema():
    registry = TaskRegistry()
    seen = []

    def check(config):
        seen.append(config)
        return [ConfigIssue("config.x", "x is odd")] if config.get("x", 0) % 2 else []

    registry.task(
        "t.check", config_schema={"type": "object", "properties": {"x": {"type": "integer"}}}, check_config=check
    )(lambda c: {})
    assert registry.validate_config("t.check", {"x": 2}) == []
    assert registry.validate_config("t.check", {"x": 3}) == [ConfigIssue("config.x", "x is odd")]
    # Not called while the schema fails: it may rely on the shape.
    assert [i.path for i in registry.validate_config("t.check", {"x": "a"})] == ["config.x"]
    assert len(seen) == 2


# --------------------------------------------------------------------------- run


def test_run_renders_config_and_leaves_the_callers_context_alone():
    registry = echo_registry()
    original = {"n": "{{ count }}", "label": "x-{{ name }}"}
    context = ctx(config=original, data={"count": 3, "name": "ann"})
    assert registry.run("test.echo", context) == {"config": {"n": 3, "label": "x-ann"}}
    assert context.config is original
    assert original == {"n": "{{ count }}", "label": "x-{{ name }}"}


def test_run_validates_the_rendered_config():
    registry = echo_registry()
    with pytest.raises(StepError) as info:
        registry.run("test.echo", ctx(config={"n": "{{ count }}"}, data={"count": 50}))
    assert info.value.error == "Stepflow.InvalidConfig"
    assert "config.n" in info.value.message
    assert info.value.details["issues"][0]["path"] == "config.n"
    assert info.value.message == "config.n: value is greater than the maximum of 10"


def test_run_config_errors_do_not_repeat_instance_data():
    with pytest.raises(StepError) as info:
        echo_registry().run("test.echo", ctx(config={"label": "{{ email }}"}, data={"email": "jane@example.com"}))
    assert info.value.error == "Stepflow.InvalidConfig"
    assert "jane" not in info.value.message
    assert info.value.message.startswith("config.label: value does not match")


def test_run_missing_template_path():
    with pytest.raises(StepError) as info:
        default_registry().run("data.set", ctx(config={"values": {"x": "{{ customer.name }}"}}))
    assert info.value.error == "Stepflow.TemplateError"
    assert info.value.message == "config.values.x: 'customer.name' is not in the instance data"


def test_run_result_checks():
    registry = TaskRegistry()
    registry.task("t.none")(lambda c: None)
    registry.task("t.list")(lambda c: [1, 2])
    registry.task("t.set")(lambda c: {"x": {1, 2}})
    registry.task("t.nan")(lambda c: {"x": float("nan")})
    assert registry.run("t.none", ctx()) == {}
    for task_id in ("t.list", "t.set", "t.nan"):
        with pytest.raises(StepError) as info:
            registry.run(task_id, ctx())
        assert info.value.error == "Stepflow.InvalidOutput"
    assert "Stepflow.InvalidOutput" in COMMON_ERRORS


def test_run_lets_handler_errors_through():
    registry = TaskRegistry()

    @registry.task("t.fail", errors=("Billing.CardDeclined",))
    def fail(c):
        raise StepError("Billing.CardDeclined", f"card declined for {c.config['who']}")

    @registry.task("t.crash")
    def crash(c):
        raise RuntimeError("bug")

    with pytest.raises(StepError) as info:
        registry.run("t.fail", ctx(config={"who": "{{ name }}"}, data={"name": "ann"}))
    assert (info.value.error, info.value.message) == ("Billing.CardDeclined", "card declined for ann")
    with pytest.raises(RuntimeError):
        registry.run("t.crash", ctx())


def test_raw_config_keys_are_not_rendered():
    registry = TaskRegistry()
    registry.task("t.raw", raw_config_keys=("code",))(lambda c: dict(c.config))
    result = registry.run("t.raw", ctx(config={"code": "{{ x }}", "text": "{{ x }}"}, data={"x": 1}))
    assert result == {"code": "{{ x }}", "text": 1}
    # Nor checked for placeholder syntax.
    assert registry.validate_config("t.raw", {"code": "{{ }}"}) == []


def test_context_defaults_log_emit_and_sleep():
    registry = TaskRegistry()

    @registry.task("t.events")
    def events(c):
        c.log("working", item=3)
        c.emit("order.checked", {"ok": True})
        c.sleep(0)
        return {"attempt": c.attempt}

    context = ctx(attempt=2)
    assert registry.run("t.events", context) == {"attempt": 2}
    # The handler got a copy of the context; events and logs land on the caller's.
    assert context.events == [{"type": "order.checked", "payload": {"ok": True}}]
    assert context.logs == [{"message": "working", "item": 3}]
    with pytest.raises(ValueError):
        context.emit("", {})
    with pytest.raises(TypeError):
        context.emit("x", ["not", "a", "dict"])


def test_context_accepts_injected_callables():
    slept, logged, emitted = [], [], []
    context = ctx(
        sleep=slept.append,
        log=lambda message, **fields: logged.append((message, fields)),
        emit=lambda kind, payload: emitted.append((kind, payload)),
    )
    copy = dataclasses.replace(context, config={"a": 1})
    copy.sleep(1.5)
    copy.log("m", level="error")
    copy.emit("e", {})
    assert slept == [1.5]
    assert logged == [("m", {"level": "error"})]
    assert emitted == [("e", {})]
    assert context.events == []


# --------------------------------------------------------------------------- templating


DATA = {
    "customer": {"name": "Ann", "age": 41, "vip": True, "nickname": None, "tags": ["a", "b"]},
    "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
    "totals": {"2024": 99.5},
    "total": 12.5,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ customer.name }}", "Ann"),
        ("{{customer.age}}", 41),
        ("{{ customer.vip }}", True),
        ("{{ customer.nickname }}", None),
        ("{{ customer.tags }}", ["a", "b"]),
        ("{{ customer }}", DATA["customer"]),
        ("{{ items.0.sku }}", "A-1"),
        ("{{ items[1].qty }}", 1),
        ("{{ customer.tags[1] }}", "b"),
        ("{{ totals.2024 }}", 99.5),
        ("{{ total }}", 12.5),
    ],
)
def test_single_placeholder_keeps_the_type(template, expected):
    result = templating.render(template, DATA)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hi {{ customer.name }}!", "Hi Ann!"),
        ("age={{ customer.age }} total={{ total }}", "age=41 total=12.5"),
        ("vip={{ customer.vip }} nick={{ customer.nickname }}", "vip=true nick=null"),
        ("tags={{ customer.tags }}", 'tags=["a", "b"]'),
        ("first={{ items[0] }}", 'first={"sku": "A-1", "qty": 2}'),
        (" {{ customer.name }}", " Ann"),
        ("{{ customer.name }}{{ customer.age }}", "Ann41"),
        ("no placeholders", "no placeholders"),
        ("\\{{ customer.name }} is literal", "{{ customer.name }} is literal"),
        ("unclosed {{ customer.name", "unclosed {{ customer.name"),
        ("{{{ customer.name }}}", "{Ann}"),
        ("{{ {x} }}", "{{ {x} }}"),
    ],
)
def test_embedded_placeholders_are_stringified(template, expected):
    assert templating.render(template, DATA) == expected


def test_render_nested_containers():
    template = {
        "to": "{{ customer.name }}",
        "lines": [{"sku": "{{ items[0].sku }}", "qty": "{{ items.0.qty }}"}, "{{ total }}", 7, None, True],
        "{{ keys.are.not.rendered }}": {"deep": ["x {{ customer.age }}"]},
    }
    before = json.dumps(template)
    assert templating.render(template, DATA) == {
        "to": "Ann",
        "lines": [{"sku": "A-1", "qty": 2}, 12.5, 7, None, True],
        "{{ keys.are.not.rendered }}": {"deep": ["x 41"]},
    }
    assert json.dumps(template) == before


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("{{ customer.email }}", "customer.email"),
        ("Dear {{ nobody }}", "nobody"),
        ("{{ items[5].sku }}", "items[5].sku"),
        ("{{ customer.name.first }}", "customer.name.first"),
        ("{{ customer.tags.x }}", "customer.tags.x"),
    ],
)
def test_missing_path_is_a_template_error(template, path):
    with pytest.raises(StepError) as info:
        templating.render({"values": {"x": [template]}}, DATA, "config")
    assert info.value.error == "Stepflow.TemplateError"
    assert info.value.message == f"config.values.x[0]: '{path}' is not in the instance data"


def test_malformed_placeholder_is_a_template_error():
    with pytest.raises(StepError) as info:
        templating.render("{{ a..b }}", DATA, "config.x")
    assert info.value.error == "Stepflow.TemplateError"
    assert info.value.message.startswith("config.x: ")


def test_placeholders_lists_referenced_paths():
    value = {
        "a": "{{ customer.name }} and {{ items[0].sku }}",
        "b": ["{{customer.name}}", {"c": "{{ total }}"}],
        "d": "\\{{ escaped }}",
        "e": 5,
    }
    assert templating.placeholders(value) == ["customer.name", "items[0].sku", "total"]
    assert templating.find_placeholders(value) == [
        ("config.a", "customer.name"),
        ("config.a", "items[0].sku"),
        ("config.b[0]", "customer.name"),
        ("config.b[1].c", "total"),
    ]
    assert templating.placeholders("plain") == []


def test_parse_path():
    assert templating.parse_path(" items[0].sku ") == ("items", "0", "sku")
    assert templating.parse_path("grid[1][2]") == ("grid", "1", "2")
    assert templating.parse_path("a.b-c.$d") == ("a", "b-c", "$d")
    for bad in ("", "a..b", "a.", "a[x]", "a b", "[0]"):
        with pytest.raises(ValueError):
            templating.parse_path(bad)


def test_an_example_whose_config_fails_the_types_checks_is_refused_at_registration_with_its_location():
    registry = TaskRegistry()
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    with pytest.raises(ValueError, match=r"examples\[1\]\.config\.n: 'x' is not of type 'integer'"):
        registry.register(TaskType(id="t.one", handler=lambda c: {}, config_schema=schema,
                                   examples=({"title": "ok", "config": {"n": 1}}, {"title": "bad", "config": {"n": "x"}})))
    assert "t.one" not in registry  # nothing half-registered
    with pytest.raises(ValueError, match=r"examples\[0\] needs a 'config' object"):
        registry.register(TaskType(id="t.two", handler=lambda c: {}, examples=({"title": "no config"},)))
    registry.register(TaskType(id="t.three", handler=lambda c: {}, config_schema=schema, category="x",
                               examples=({"title": "templated", "config": {"n": "{{ count }}"}},)))
    assert registry.manifest("t.three")["examples"] == [{"title": "templated", "config": {"n": "{{ count }}"}}]
    assert registry.categories() == {"x": 1}
    assert [m["id"] for m in registry.manifests("x")] == ["t.three"] and registry.manifests("y") == []


def test_the_builtin_catalog_gives_every_type_a_category_schemas_and_examples():
    from chalicelib.tasks.registry import default_registry

    registry = default_registry()
    for manifest in registry.manifests():
        assert manifest["category"] != "custom" and manifest["examples"], manifest["id"]
        assert manifest["configSchema"]["type"] == "object" and manifest["outputSchema"]["type"] == "object"
