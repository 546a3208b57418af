"""Registers, validates and looks up definitions; keeps each workflow's state machine current."""

from __future__ import annotations

import builtins
import functools
import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.core.compiler import CompileError, compile_definition
from chalicelib.core.graph import build_graph
from chalicelib.core.loading import revision_of
from chalicelib.core.model import Definition
from chalicelib.core.sizing import bind_placeholders
from chalicelib.core.validation import Issue, compile_failure, parse_definition, size_issues, validate_definition
from chalicelib.errors import InvalidInput, NotFound
from chalicelib.tasks.registry import TaskRegistry

log = logging.getLogger("stepflow.definitions")


def check(data: Any, registry: TaskRegistry,
          bindings: dict[str, str] | None = None) -> tuple[Definition | None, list[Issue], dict[str, Any] | None]:
    """Dry run: the definition, every issue, and the compiled ASL (placeholders unbound) when there are none.

    The size limit is checked on the ASL with `bindings` (placeholder name -> function ARN) filled in,
    as Step Functions will receive it; a placeholder without a binding counts as the longest ARN.
    """
    with collector_paused():
        return _check(data, registry, bindings)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Holds off the cyclic garbage collector while a definition is checked and compiled.

    The check builds many objects that all live until it returns, so the collector would walk them
    again and again (a third of the CPU time at 10,000 steps) with little to free; reference counting
    still frees as usual, and the collector runs as before once the check is done. Another thread's
    check may re-enable it early: that costs time, never correctness.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check(data: Any, registry: TaskRegistry,
           bindings: dict[str, str] | None) -> tuple[Definition | None, list[Issue], dict[str, Any] | None]:
    definition, issues = parse_definition(data)
    if definition is None:
        return None, issues, None
    issues = validate_definition(definition, registry)
    if issues:
        return definition, issues, None
    try:
        asl = compile_definition(definition, revision_of(definition))
    except CompileError as exc:  # validation should have caught it; report rather than fail
        return definition, [compile_failure(str(exc))], None
    too_large = size_issues(asl, bindings)
    return definition, too_large, (None if too_large else asl)


def shape(definition: Definition) -> dict[str, Any]:
    """The graph part of the seed's WorkflowDefinitionDTO: steps, edges, initial and terminal steps."""
    graph = build_graph(definition)
    return {
        "steps": definition.step_ids,
        "edges": [{"source": e.source, "target": e.target, "condition": e.condition} for e in graph.edges],
        "initial_step": definition.initial_step or (graph.sources[0] if graph.sources else None),
        "terminal_steps": definition.terminal_steps or graph.sinks,
    }


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """A stored definition as the API shows it in lists."""
    out = {k: record.get(k) for k in ("name", "version", "revision", "description", "created_at", "created_by",
                                      "tenant_id")}
    return {**out, **(record.get("summary") or {})}


class DefinitionService:
    def __init__(self, store: Any, machines: Any, registry: TaskRegistry, placeholders: Callable[[], dict[str, str]],
                 now: Callable[[], str]):
        self._store = store
        self._machines = machines
        self._registry = registry
        self._placeholders = placeholders
        self._now = now
        # A revision's record never changes (its id is its content's hash): read once per process. The
        # latest pointer, which does change, is read on every get.
        self._revision = functools.lru_cache(maxsize=128)(self._read_revision)

    def _read_revision(self, name: str, revision: str) -> dict[str, Any] | None:
        return self._store.revision(name, revision)

    def validate(self, data: Any) -> dict[str, Any]:
        definition, issues, asl = check(data, self._registry, self._placeholders())
        return {
            "valid": not issues,
            "issues": [i.as_dict() for i in issues],
            "revision": revision_of(definition) if definition is not None and not issues else None,
            "asl": asl,
        }

    def register(self, data: Any, created_by: str | None = None, tenant_id: str | None = None) -> dict[str, Any]:
        # Everything, the size as deployed included, is checked before anything is stored.
        bindings = self._placeholders()
        definition, issues, asl = check(data, self._registry, bindings)
        if issues or definition is None or asl is None:
            raise InvalidInput({"message": "the definition is not valid", "issues": [i.as_dict() for i in issues]})
        revision = revision_of(definition)
        latest = self._store.latest(definition.name)
        if (latest and latest.get("revision") == revision and latest.get("state_machine_arn")
                and latest.get("tenant_id") == tenant_id):
            return {**self.get(definition.name), "created": False}
        record = {
            "name": definition.name, "version": definition.version, "revision": revision,
            "description": definition.description, "created_at": self._now(), "created_by": created_by,
            "tenant_id": tenant_id, "body": definition.model_dump(mode="json"), "summary": shape(definition),
        }
        # The revision is stored before the state machine runs it (its steps load it by revision),
        # and the pointers move only once the state machine runs it.
        self._store.put_revision(record)
        arn = self._machines.ensure(definition.name, bind_placeholders(asl, bindings),
                                    latest.get("state_machine_arn") if latest else None)
        self._store.point_to({**record, "state_machine_arn": arn})
        return {**record, "state_machine_arn": arn, "created": True}

    def get(self, name: str, version: str | None = None) -> dict[str, Any]:
        pointer = self._store.version(name, version) if version else self._store.latest(name)
        if pointer is None:
            raise NotFound(f"no definition named '{name}'" + (f" with version '{version}'" if version else ""))
        record = self._revision(name, pointer["revision"])
        if record is None:
            self._revision.cache_clear()  # not stored (yet): not remembered either
            raise NotFound(f"definition '{name}' revision {pointer['revision']} is missing")
        return {**record, "state_machine_arn": pointer.get("state_machine_arn")}

    def get_revision(self, name: str, revision: str) -> dict[str, Any]:
        record = self._store.revision(name, revision)
        if record is None:
            raise NotFound(f"definition '{name}' revision {revision} is missing")
        return record

    def list(self) -> list[dict[str, Any]]:
        return sorted(self._store.list_latest(), key=lambda r: r["name"])

    def asl(self, name: str, version: str | None = None) -> dict[str, Any]:
        record = self.get(name, version)
        return compile_definition(Definition.model_validate(record["body"]), record["revision"])

    def restore_state_machines(self) -> builtins.list[str]:
        """Creates each workflow's state machine again from its latest revision: for a Step Functions that
        lost them while the store kept the definitions (the local runtime after a restart). A pointer whose
        recorded ARN differs from the new one (another account or region) is moved to it. The names."""
        bindings = self._placeholders()
        restored = []
        for latest in self._store.list_latest():
            try:
                record = self.get(latest["name"])
                asl = compile_definition(Definition.model_validate(record["body"]), record["revision"])
                arn = self._machines.ensure(record["name"], bind_placeholders(asl, bindings))
            except Exception:  # noqa: BLE001 - one damaged record must not keep the others from running
                log.warning("the state machine of workflow %s could not be restored", latest["name"], exc_info=True)
                continue
            if arn != latest.get("state_machine_arn"):
                self._store.point_to({**record, "state_machine_arn": arn})
            restored.append(record["name"])
        return restored
