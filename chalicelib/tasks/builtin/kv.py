"""kv.get, kv.put, kv.delete: the key-value store (the one /kv serves) from a step, in the instance's tenant.

The store and the tenant lookup are passed in (``register(registry, store=..., tenant_of=...)``), so this
module stays free of AWS: ``store()`` gives the service (``get/put/delete`` by tenant, namespace and key),
``tenant_of(execution_id)`` the tenant of the instance the step runs in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.core import kv
from chalicelib.errors import NotFound, PreconditionFailed
from chalicelib.tasks.errors import INVALID_CONFIG, StepError
from chalicelib.tasks.registry import TaskContext, TaskType

CATEGORY = "kv"
KEY_NOT_FOUND = "KvKeyNotFound"  # kv.get / kv.delete with required: true, and no such key
VERSION_CONFLICT = "KvVersionConflict"  # kv.put / kv.delete with if_version (or create_only) that does not hold
VALUE_TOO_LARGE = "KvValueTooLarge"  # kv.put of a value over the store's bound
UNAVAILABLE = "KvUnavailable"  # the instance's tenant could not be read: nothing was read or written

NAMESPACE = {"type": "string", "pattern": f"^{kv.NAMESPACE_RE.pattern}$",
             "description": "1-64 letters, digits, '_', '.', '-'; the instance's tenant's own"}
KEY = {"type": "string", "pattern": f"^{kv.KEY_RE.pattern}$",
       "description": "1-255 letters, digits or _ . : @ = + ~ -"}
VERSION = {"type": "integer", "minimum": 1}
REQUIRED = {"type": "boolean", "default": False}

GET_CONFIG: dict[str, Any] = {
    "type": "object", "required": ["namespace", "key"], "additionalProperties": False,
    "properties": {"namespace": NAMESPACE, "key": KEY,
                   "required": {**REQUIRED, "description": f"true: a missing key fails the step with {KEY_NOT_FOUND}"},
                   "default": {"description": "The output's value when the key is missing (default null)"}},
}
GET_OUTPUT: dict[str, Any] = {
    "type": "object", "required": ["found", "value", "version"], "additionalProperties": False,
    "properties": {"found": {"type": "boolean"}, "value": {"description": "The stored JSON value, or the default"},
                   "version": {"type": ["integer", "null"], "minimum": 1,
                               "description": "Pass it to kv.put's if_version for an optimistic update"}},
}
PUT_CONFIG: dict[str, Any] = {
    "type": "object", "required": ["namespace", "key", "value"], "additionalProperties": False,
    "properties": {
        "namespace": NAMESPACE, "key": KEY,
        "value": {"description": "Any JSON; \"{{ path }}\" alone keeps the referenced value's type"},
        "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": kv.MAX_TTL_SECONDS,
                        "description": "The entry expires this long after the write (default: never)"},
        "if_version": {**VERSION, "description": f"Write only over this version, else fail with {VERSION_CONFLICT}"},
        "create_only": {"type": "boolean", "default": False,
                        "description": f"Write only if the key does not exist, else fail with {VERSION_CONFLICT}"},
    },
}
PUT_OUTPUT: dict[str, Any] = {
    "type": "object", "required": ["key", "version", "created"], "additionalProperties": False,
    "properties": {"key": {"type": "string"}, "version": VERSION, "created": {"type": "boolean"},
                   "expires_at": {"type": "string", "format": "date-time"}},
}
DELETE_CONFIG: dict[str, Any] = {
    "type": "object", "required": ["namespace", "key"], "additionalProperties": False,
    "properties": {"namespace": NAMESPACE, "key": KEY,
                   "if_version": {**VERSION, "description": f"Delete only this version, else fail with {VERSION_CONFLICT}"},
                   "required": {**REQUIRED, "description": f"true: a missing key fails the step with {KEY_NOT_FOUND}"}},
}
DELETE_OUTPUT: dict[str, Any] = {
    "type": "object", "required": ["deleted"], "additionalProperties": False,
    "properties": {"deleted": {"type": "boolean"}, "version": {**VERSION, "description": "The version deleted"}},
}


class _Steps:
    def __init__(self, store: Callable[[], Any], tenant_of: Callable[[str], str | None]):
        self._store = store
        self._tenant_of = tenant_of

    def _tenant(self, ctx: TaskContext) -> str | None:
        try:
            return self._tenant_of(ctx.execution_id)
        except LookupError:
            raise StepError(UNAVAILABLE, "the instance's tenant could not be read; nothing was read or written") \
                from None

    def get(self, ctx: TaskContext) -> dict[str, Any]:
        c = ctx.config
        try:
            entry = self._store().get(self._tenant(ctx), c["namespace"], c["key"])
        except NotFound:
            if c.get("required"):
                raise StepError(KEY_NOT_FOUND, f"no key '{c['key']}' in namespace '{c['namespace']}'") from None
            return {"found": False, "value": c.get("default"), "version": None}
        except kv.KvError as exc:
            raise StepError(INVALID_CONFIG, f"config.{exc.location}: {exc.message}") from None
        return {"found": True, "value": entry["value"], "version": entry["version"]}

    def put(self, ctx: TaskContext) -> dict[str, Any]:
        c = ctx.config
        try:
            entry, created = self._store().put(self._tenant(ctx), c["namespace"], c["key"], c["value"],
                                               ttl_seconds=c.get("ttl_seconds"), if_version=c.get("if_version"),
                                               create_only=bool(c.get("create_only")),
                                               writer=f"{ctx.execution_id}#{ctx.step_id}")
        except PreconditionFailed as exc:
            raise StepError(VERSION_CONFLICT, str(exc)) from None
        except kv.ValueTooLarge as exc:
            raise StepError(VALUE_TOO_LARGE, exc.message) from None
        except kv.KvError as exc:
            raise StepError(INVALID_CONFIG, f"config.{exc.location}: {exc.message}") from None
        out = {"key": entry["key"], "version": entry["version"], "created": created}
        if "expires_at" in entry:
            out["expires_at"] = entry["expires_at"]
        ctx.log("kv.put", namespace=c["namespace"], key=c["key"], version=entry["version"])
        return out

    def delete(self, ctx: TaskContext) -> dict[str, Any]:
        c = ctx.config
        try:
            removed = self._store().delete(self._tenant(ctx), c["namespace"], c["key"], if_version=c.get("if_version"))
        except NotFound:
            if c.get("required"):
                raise StepError(KEY_NOT_FOUND, f"no key '{c['key']}' in namespace '{c['namespace']}'") from None
            return {"deleted": False}
        except PreconditionFailed as exc:
            raise StepError(VERSION_CONFLICT, str(exc)) from None
        except kv.KvError as exc:
            raise StepError(INVALID_CONFIG, f"config.{exc.location}: {exc.message}") from None
        return {"deleted": True, "version": removed["version"]}


def register(registry: Any, *, store: Callable[[], Any], tenant_of: Callable[[str], str | None]) -> None:
    steps = _Steps(store, tenant_of)
    registry.register(TaskType(
        id="kv.get", name="Read a key", category=CATEGORY, handler=steps.get,
        description="Reads a key of the instance's tenant's store: its value and version (found: false, or "
                    f"{KEY_NOT_FOUND} with required: true, when it is missing or expired).",
        config_schema=GET_CONFIG, output_schema=GET_OUTPUT, errors=(KEY_NOT_FOUND, UNAVAILABLE)))
    registry.register(TaskType(
        id="kv.put", name="Write a key", category=CATEGORY, handler=steps.put,
        description="Writes a key of the instance's tenant's store, optionally expiring; with if_version (the "
                    f"version kv.get gave) or create_only it fails with {VERSION_CONFLICT} when another writer "
                    "got there first (Retry or Catch it).",
        config_schema=PUT_CONFIG, output_schema=PUT_OUTPUT, errors=(VERSION_CONFLICT, VALUE_TOO_LARGE, UNAVAILABLE)))
    registry.register(TaskType(
        id="kv.delete", name="Delete a key", category=CATEGORY, handler=steps.delete,
        description="Deletes a key of the instance's tenant's store (deleted: false when it was not there); "
                    f"with if_version only that version ({VERSION_CONFLICT} otherwise).",
        config_schema=DELETE_CONFIG, output_schema=DELETE_OUTPUT,
        errors=(KEY_NOT_FOUND, VERSION_CONFLICT, UNAVAILABLE)))
