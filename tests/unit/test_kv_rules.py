"""The key-value store's pure rules (names, sizes, ETags, partition keys) and the kv.* task types over a
store fake: the instance's tenant, named errors for conflicts, missing keys and oversize values."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.core import kv
from chalicelib.errors import NotFound, PreconditionFailed
from chalicelib.tasks.builtin import kv as kv_tasks
from chalicelib.tasks.errors import INVALID_CONFIG, StepError
from chalicelib.tasks.registry import TaskContext, TaskRegistry


def test_if_match_takes_one_strong_etag_or_a_star():
    assert kv.parse_if_match(None) is None
    assert kv.parse_if_match('"12"') == 12
    assert kv.parse_if_match(" 3 ") == 3
    assert kv.parse_if_match("*") == "*"
    for bad in ('W/"1"', '"1", "2"', '"0"', '"-1"', '"x"', "", '"' + "9" * 19 + '"'):
        with pytest.raises(kv.KvError):
            kv.parse_if_match(bad)
    assert kv.parse_if_none_match("*") is True and kv.parse_if_none_match(None) is False
    with pytest.raises(kv.KvError):
        kv.parse_if_none_match('"1"')


def test_names_values_and_ttl_are_bounded():
    assert kv.check_namespace("orders.v2-eu_1") == "orders.v2-eu_1"
    for bad in ("", "a|b", "-x", "n" * 65, "a/b", 3):
        with pytest.raises(kv.KvError):
            kv.check_namespace(bad)
    assert kv.check_key("user:42@eu=+~") == "user:42@eu=+~"
    for bad in ("", ".", "a b", "a/b", "k" * 256, "é"):
        with pytest.raises(kv.KvError):
            kv.check_key(bad)
    assert kv.encode_value({"a": [1, 2.5, None]}) == '{"a":[1,2.5,null]}'
    with pytest.raises(kv.ValueTooLarge):
        kv.encode_value("x" * kv.MAX_VALUE_BYTES)
    with pytest.raises(kv.KvError):
        kv.encode_value(float("nan"))
    for bad in (0, -1, True, 1.5, "60", kv.MAX_TTL_SECONDS + 1):
        with pytest.raises(kv.KvError):
            kv.check_ttl(bad)
    assert kv.expires_at(100.2, 60) == 161  # rounded up: never before the TTL has passed
    assert kv.is_live(None, 1e12) and kv.is_live(161, 160.9) and not kv.is_live(161, 161)


def test_partition_keys_keep_tenants_and_the_shared_space_apart():
    keys = {kv.partition(t, n) for t in (None, "-", "=", "", "a", "a|b") for n in ("a", "b")}
    assert len(keys) == 12


class FakeKv:
    """The service's interface over a dict, with its errors."""

    def __init__(self) -> None:
        self.data: dict[tuple[Any, str, str], tuple[Any, int]] = {}
        self.writers: list[Any] = []

    def get(self, tenant: Any, namespace: str, key: str) -> dict[str, Any]:
        kv.check_namespace(namespace)
        if (tenant, namespace, key) not in self.data:
            raise NotFound("no key")
        value, version = self.data[(tenant, namespace, key)]
        return {"key": key, "value": value, "version": version}

    def put(self, tenant: Any, namespace: str, key: str, value: Any, *, ttl_seconds: Any = None,
            if_version: Any = None, create_only: bool = False, writer: Any = None) -> tuple[dict[str, Any], bool]:
        kv.encode_value(value)
        self.writers.append(writer)
        current = self.data.get((tenant, namespace, key))
        if (if_version is not None and (current is None or current[1] != if_version)) or (create_only and current):
            raise PreconditionFailed(f"key '{key}' is not at version {if_version}")
        version = (current[1] if current else 0) + 1
        self.data[(tenant, namespace, key)] = (value, version)
        return {"key": key, "value": value, "version": version}, current is None

    def delete(self, tenant: Any, namespace: str, key: str, *, if_version: Any = None) -> dict[str, Any]:
        current = self.data.get((tenant, namespace, key))
        if current is None:
            raise NotFound("no key")
        if if_version is not None and current[1] != if_version:
            raise PreconditionFailed("changed")
        del self.data[(tenant, namespace, key)]
        return {"version": current[1]}


@pytest.fixture
def steps():
    store, tenants = FakeKv(), {"exec-acme": "acme", "exec-none": None}

    def tenant_of(execution: str) -> str | None:
        if execution not in tenants:
            raise LookupError(execution)
        return tenants[execution]

    registry = TaskRegistry()
    kv_tasks.register(registry, store=lambda: store, tenant_of=tenant_of)

    def run(task: str, config: dict[str, Any], execution: str = "exec-acme", data: Any = None) -> dict[str, Any]:
        return registry.run(task, TaskContext(step_id="s", execution_id=execution, config=config, input=data or {}))

    run.store = store  # type: ignore[attr-defined]
    run.registry = registry  # type: ignore[attr-defined]
    return run


def test_steps_write_and_read_in_the_instances_tenant(steps):
    out = steps("kv.put", {"namespace": "carts", "key": "{{ id }}", "value": "{{ cart }}"},
                data={"id": "c1", "cart": {"n": 2}})
    assert out == {"key": "c1", "version": 1, "created": True}
    assert steps.store.data == {("acme", "carts", "c1"): ({"n": 2}, 1)}
    assert steps.store.writers == ["exec-acme#s"]  # the step's own name: a repeat of its write is recognised
    assert steps("kv.get", {"namespace": "carts", "key": "c1"}) == {"found": True, "value": {"n": 2}, "version": 1}
    # Another tenant's step (here the tenant-less one) does not see it.
    assert steps("kv.get", {"namespace": "carts", "key": "c1", "default": 0}, "exec-none") == \
        {"found": False, "value": 0, "version": None}
    assert steps("kv.put", {"namespace": "carts", "key": "c1", "value": 3, "if_version": 1})["version"] == 2
    assert steps("kv.delete", {"namespace": "carts", "key": "c1"}) == {"deleted": True, "version": 2}
    assert steps("kv.delete", {"namespace": "carts", "key": "c1"}) == {"deleted": False}


def test_steps_fail_with_named_errors(steps):
    steps("kv.put", {"namespace": "n", "key": "k", "value": 1})
    cases = [
        ("kv.put", {"namespace": "n", "key": "k", "value": 2, "if_version": 7}, kv_tasks.VERSION_CONFLICT),
        ("kv.put", {"namespace": "n", "key": "k", "value": 2, "create_only": True}, kv_tasks.VERSION_CONFLICT),
        ("kv.delete", {"namespace": "n", "key": "k", "if_version": 7}, kv_tasks.VERSION_CONFLICT),
        ("kv.get", {"namespace": "n", "key": "gone", "required": True}, kv_tasks.KEY_NOT_FOUND),
        ("kv.delete", {"namespace": "n", "key": "gone", "required": True}, kv_tasks.KEY_NOT_FOUND),
        ("kv.put", {"namespace": "n", "key": "k", "value": "x" * kv.MAX_VALUE_BYTES}, kv_tasks.VALUE_TOO_LARGE),
        ("kv.get", {"namespace": "n", "key": "{{ k }}"}, INVALID_CONFIG),  # rendered to a key with a space
        ("kv.put", {"namespace": "n", "key": "k", "value": 1, "ttl_seconds": 0}, INVALID_CONFIG),
    ]
    for task, config, error in cases:
        with pytest.raises(StepError) as caught:
            steps(task, config, data={"k": "a b"})
        assert caught.value.error == error, (task, config, caught.value)
    assert steps.store.data[("acme", "n", "k")] == (1, 1)  # nothing changed
    # Without the instance's tenant nothing is read or written (never the shared space instead).
    with pytest.raises(StepError) as caught:
        steps("kv.put", {"namespace": "n", "key": "k", "value": 9}, "exec-unknown")
    assert caught.value.error == kv_tasks.UNAVAILABLE


def test_the_catalog_describes_each_type_and_registration_checks_configs(steps):
    registry = steps.registry
    manifests = {m["id"]: m for m in registry.manifests()}
    assert set(manifests) == {"kv.get", "kv.put", "kv.delete"}
    assert {m["category"] for m in manifests.values()} == {"kv"}
    assert kv_tasks.VERSION_CONFLICT in manifests["kv.put"]["errors"]
    assert manifests["kv.get"]["outputSchema"]["required"] == ["found", "value", "version"]
    assert registry.validate_config("kv.put", {"namespace": "n", "key": "{{ id }}", "value": 1}) == []
    issues = registry.validate_config("kv.put", {"namespace": "bad|ns", "key": "k"})
    assert {i.path for i in issues} == {"config.namespace", "config.value"}
