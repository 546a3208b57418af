"""Registers, validates and looks up definitions; keeps each workflow's state machine current."""

from __future__ import annotations

import builtins
import functools
import gc
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.core import definition_keys
from chalicelib.core.compiler import CompileError, CompileOptions, compile_definition
from chalicelib.core.graph import build_graph
from chalicelib.core.loading import revision_of
from chalicelib.core.model import Definition
from chalicelib.core.revisions import change_summary
from chalicelib.core.sizing import bind_placeholders
from chalicelib.core.validation import Issue, compile_failure, parse_definition, size_issues, validate_definition
from chalicelib.errors import Conflict, InvalidInput, NotFound
from chalicelib.tasks.registry import TaskRegistry

CONTENT_ID = re.compile(r"^[0-9a-f]{16}$")  # revision_of's content hash
NAME = definition_keys.NAME
shown = definition_keys.name_of
HISTORY_DIGITS = 6  # a revision number has at most this many digits (the store's hist#000001 keys)
log = logging.getLogger("stepflow.definitions")


def check(data: Any, registry: TaskRegistry, bindings: dict[str, str] | None = None,
          key: str | None = None) -> tuple[Definition | None, list[Issue], dict[str, Any] | None]:
    """Dry run: the definition, every issue, and the compiled ASL (placeholders unbound) when there are none.

    The size limit is checked on the ASL with `bindings` (placeholder name -> function ARN) filled in,
    as Step Functions will receive it; a placeholder without a binding counts as the longest ARN.
    `key`: the definition's key (core/definition_keys.py), which the compiled states carry.
    """
    with collector_paused():
        return _check(data, registry, bindings, key)


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


def _check(data: Any, registry: TaskRegistry, bindings: dict[str, str] | None,
           key: str | None = None) -> tuple[Definition | None, list[Issue], dict[str, Any] | None]:
    definition, issues = parse_definition(data)
    if definition is None:
        return None, issues, None
    issues = validate_definition(definition, registry)
    if issues:
        return definition, issues, None
    try:
        asl = compile_definition(definition, revision_of(definition), _options(key))
    except CompileError as exc:  # validation should have caught it; report rather than fail
        return definition, [compile_failure(str(exc))], None
    too_large = size_issues(asl, bindings)
    return definition, too_large, (None if too_large else asl)


def _options(key: str | None) -> CompileOptions:
    return CompileOptions(workflow=key) if key else CompileOptions()


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
                                      "tenant_id", "namespace", "revision_number")}
    out["active"] = record.get("active", True)
    if record.get("adhoc"):  # an anonymous definition, made by an inline start (service/adhoc.py)
        out.update(adhoc=True, adhoc_label=record.get("adhoc_label"))
    return {**out, **(record.get("summary") or {})}


def _valid(name: Any, namespace: str | None) -> bool:
    return isinstance(name, str) and bool(NAME.match(name)) and (namespace is None or bool(NAME.match(namespace)))


class DefinitionService:
    def __init__(self, store: Any, machines: Any, registry: TaskRegistry, placeholders: Callable[[], dict[str, str]],
                 now: Callable[[], str], *, published: Callable[[dict[str, Any]], None] | None = None,
                 credentials: Callable[[str | None, set[str]], set[str]] | None = None):
        self._store = store
        # Which of the names are the tenant's credentials (service/credentials.py); None: no credentials.
        self._credentials = credentials
        self._machines = machines
        self._registry = registry
        self._placeholders = placeholders
        self._now = now
        # Told the latest pointer after each registration, a repeated one included (service/aliases.py
        # moves the `live` alias there).
        self._published = published or (lambda pointer: None)
        # A revision's record never changes (its id is its content's hash): read once per process. The
        # latest pointer, which does change, is read on every get.
        self._revision = functools.lru_cache(maxsize=128)(self._read_revision)

    def _read_revision(self, name: str, revision: str) -> dict[str, Any] | None:
        return self._store.revision(name, revision)

    def resolve(self, name: Any, tenant_id: str | None, namespace: str | None = None) -> str | None:
        """The key a tenant's registration of `name` (in `namespace`) goes to: its own definition's, which
        may be one stored before names were scoped, or else the key its own will have. None for what
        cannot be a name."""
        if not _valid(name, namespace):
            return None
        own, *older = definition_keys.candidates(tenant_id, namespace, name)
        if older and self._store.latest(own) is None:
            stored = self._store.latest(older[0])
            if stored is not None and definition_keys.owned_by(stored, older[0], tenant_id):
                return str(older[0])
        return own

    def find(self, name: Any, tenant_id: str | None, namespace: str | None = None) -> dict[str, Any] | None:
        """The latest revision of the definition a tenant's `name` (in `namespace`) stands for, as get gives
        it: its own, else a tenant-less one it may see (shared, or its own stored before names were
        scoped); None when there is none. Another tenant's is never read."""
        if not _valid(name, namespace):
            return None
        for key in definition_keys.candidates(tenant_id, namespace, name):
            try:
                record = self.get(key)
            except NotFound:
                continue
            if definition_keys.owned_by(record, key, tenant_id) or record.get("tenant_id") is None:
                return record
        return None

    def validate(self, data: Any, tenant_id: str | None = None) -> dict[str, Any]:
        """The dry run; credentials are looked up in `tenant_id`'s namespace, as registration would."""
        definition, issues, asl = check(data, self._registry, self._placeholders())
        if definition is not None and not issues:
            issues = self._credential_issues(definition, tenant_id)
            asl = None if issues else asl
        return {
            "valid": not issues,
            "issues": [i.as_dict() for i in issues],
            "revision": revision_of(definition) if definition is not None and not issues else None,
            "asl": asl,
        }

    def register(self, data: Any, created_by: str | None = None, tenant_id: str | None = None, *,
                 source: str | None = None, source_format: str = "json", name: str | None = None,
                 restored_from: int | None = None, key: str | None = None, marks: dict[str, Any] | None = None,
                 vet: Callable[[Definition], None] | None = None) -> dict[str, Any]:
        """Stores the definition as a new revision when its content differs from the latest (the same
        content answers the same revision, and reactivates a deactivated definition). `source`: the text
        as submitted, kept with the history entry; `name`: the name the caller addressed (PUT); `key`:
        where it is stored (resolve; default: the name, i.e. no tenant's and no namespace's); `marks`:
        attributes kept on the revision and its pointers (an anonymous definition's `adhoc`); `vet`: the
        caller's own check of the valid definition, which may refuse it before anything is stored."""
        # Everything, the size as deployed included, is checked before anything is stored.
        bindings = self._placeholders()
        definition, issues, asl = check(data, self._registry, bindings, key)
        if issues or definition is None or asl is None:
            raise InvalidInput({"message": "the definition is not valid", "issues": [i.as_dict() for i in issues]})
        if name is not None and definition.name != name:
            raise InvalidInput({"message": "the definition is not valid", "issues": [{
                "code": "name_mismatch", "location": "name", "hint": "",
                "message": f"the body names '{definition.name}' but the path names '{name}'"}]})
        key = key or definition.name
        if definition_keys.name_of(key) != definition.name:
            raise InvalidInput({"message": "the definition is not valid", "issues": [{
                "code": "name_mismatch", "location": "name", "hint": "",
                "message": f"the body names '{definition.name}' but the request names '{shown(key)}'"}]})
        refused = self._credential_issues(definition, tenant_id)
        if refused:
            raise InvalidInput({"message": "the definition is not valid", "issues": [i.as_dict() for i in refused]})
        if vet is not None:
            vet(definition)
        revision = revision_of(definition)
        latest = self._store.latest(key)
        # A scoped key's tenant owns it; a tenant-less key's record keeps the owner it was stored with.
        scope = definition_keys.split(key)
        owner = scope.tenant_id if scope.tenant_id is not None else (latest.get("tenant_id") if latest else tenant_id)
        if (latest and latest.get("revision") == revision and latest.get("state_machine_arn")
                and latest.get("tenant_id") == owner):
            if latest.get("active") is False:
                self._store.set_active(key, True, {})
            # A repeat may be the retry of a registration cut short after its pointer moved: the alias
            # it would have moved is moved now (setting an alias to what it is changes nothing).
            self._published(latest)
            return {**self.get(key), "created": False}
        previous = self._revision(key, latest["revision"]) if latest else None
        change = change_summary(Definition.model_validate(previous["body"]) if previous else None, definition)
        number = int((latest or {}).get("revision_number") or 0) + 1
        earlier = []
        if latest and previous and not latest.get("revision_number"):
            # Stored before revisions were numbered: its latest becomes revision 1 (so it can be read,
            # compared and restored), the new one revision 2.
            earlier.append({"number": 1, "revision": latest["revision"], "version": latest.get("version"),
                            "created_at": latest.get("created_at"), "created_by": latest.get("created_by"),
                            "change": "first revision (stored before revisions were numbered)",
                            "source": json.dumps(previous["body"], indent=2), "source_format": "json"})
            number = 2
        now = self._now()
        record = {
            "key": key, "name": definition.name, "namespace": scope.namespace, "version": definition.version,
            "revision": revision, "description": definition.description, "created_at": now, "created_by": created_by,
            "tenant_id": owner, "body": definition.model_dump(mode="json"), "summary": shape(definition),
            **(marks or {}),
        }
        entry = {"number": number, "revision": revision, "version": definition.version, "created_at": now,
                 "created_by": created_by, "restored_from": restored_from,
                 "change": (f"restored revision {restored_from}: " if restored_from else "") + change,
                 "source": source if source is not None else json.dumps(data, indent=2),
                 "source_format": source_format if source is not None else "json"}
        # The revision is stored before the state machine runs it (its steps load it by revision),
        # and the pointers move only once the state machine runs it. The update publishes a version of
        # the state machine in the same call; its ARN is recorded with the pointer and the history entry,
        # in one transaction. A process that dies after publishing and before recording leaves a
        # version nothing names (harmless): the client's retry finds the pointer unmoved, publishes again
        # and records that one, so the retry converges. The `live` alias moves last (self._published);
        # a retry that finds the pointer already moved moves it then.
        self._store.put_revision(record)
        arn, version_arn = self._machines.publish(key, bind_placeholders(asl, bindings),
                                                  latest.get("state_machine_arn") if latest else None)
        entry["state_machine_version_arn"] = version_arn
        pointer = {**record, "state_machine_arn": arn, "state_machine_version_arn": version_arn,
                   "revision_number": number, "active": True}
        self._store.point_to(pointer, *earlier, entry)
        self._published(pointer)
        return {**pointer, "created": True}

    def _credential_issues(self, definition: Definition, tenant_id: str | None) -> list[Issue]:
        """Every credential the steps name must be the registering tenant's (asked only when some are named)."""
        from chalicelib.core.credentials import credential_issues, references

        found = references(definition, self._registry)
        if not found:
            return []
        names = {ref.name for ref in found if ref.name}
        known = self._credentials(tenant_id, names) if self._credentials is not None and names else set()
        return credential_issues(found, known)

    def get(self, name: str, version: str | None = None, revision: str | None = None) -> dict[str, Any]:
        """The latest revision, the latest of a version, or one revision (by number or content id); a
        revision that is not this workflow's (or not of `version`) is not found, never ignored.

        Here and below, `name` is the definition's key (resolve), its name when it has no tenant or
        namespace; messages speak of the name only."""
        latest = self._store.latest(name)
        if revision is not None:
            number, content = self._resolve(name, revision)
            record = self._revision(name, content)
            if record is None or latest is None or (version and record.get("version") != version):
                raise NotFound(f"definition '{shown(name)}' has no revision '{revision}'"
                               + (f" with version '{version}'" if version else ""))
            # Who owns the definition is the latest pointer's to say: a revision record is kept as first
            # written (the same content registered again by its owner's tenant is the same revision).
            return {**record, "state_machine_arn": latest.get("state_machine_arn"), "revision_number": number,
                    "active": latest.get("active", True), "tenant_id": latest.get("tenant_id")}
        pointer = self._store.version(name, version) if version else latest
        if pointer is None or latest is None:
            raise NotFound(f"no definition named '{shown(name)}'" + (f" with version '{version}'" if version else ""))
        record = self._revision(name, pointer["revision"])
        if record is None:
            self._revision.cache_clear()  # not stored (yet): not remembered either
            raise NotFound(f"definition '{shown(name)}' revision {pointer['revision']} is missing")
        return {**record, "state_machine_arn": pointer.get("state_machine_arn"),
                "state_machine_version_arn": pointer.get("state_machine_version_arn"),
                "revision_number": pointer.get("revision_number"), "active": latest.get("active", True),
                "tenant_id": latest.get("tenant_id")}

    def _resolve(self, name: str, revision: str) -> tuple[int | None, str]:
        """(history number, content revision) for a revision given by number ("3") or by content id."""
        if revision.isdigit() and len(revision) <= HISTORY_DIGITS:
            entry = self._store.entry(name, int(revision))
            if entry is None:
                raise NotFound(f"definition '{shown(name)}' has no revision '{revision}'")
            return int(entry["number"]), entry["revision"]
        if not CONTENT_ID.match(revision):
            raise NotFound(f"definition '{shown(name)}' has no revision '{revision}'")
        entry = self._store.find_revision(name, revision)
        return (int(entry["number"]) if entry else None), revision

    def entry(self, name: str, revision: str) -> dict[str, Any]:
        """The history entry (source included) a revision number or content id names."""
        if revision.isdigit() and len(revision) <= HISTORY_DIGITS:  # one read, not a resolve and a read again
            found = self._store.entry(name, int(revision))
            if found is None:
                raise NotFound(f"definition '{shown(name)}' has no revision '{revision}' in its history")
            return found  # type: ignore[no-any-return]
        number, content = self._resolve(name, revision)
        entry = self._store.entry(name, number) if number is not None else None
        if entry is None:
            raise NotFound(f"definition '{shown(name)}' has no revision '{revision}' in its history")
        return entry

    def get_revision(self, name: str, revision: str) -> dict[str, Any]:
        record = self._store.revision(name, revision)
        if record is None:
            raise NotFound(f"definition '{shown(name)}' revision {revision} is missing")
        return record

    def list(self, include_inactive: bool = False, include_adhoc: bool = False) -> builtins.list[dict[str, Any]]:
        """The latest revision of each workflow; anonymous (ad hoc) ones only when asked: they are listed
        apart, so a listing without them does not read them."""
        latest = [*self._store.list_latest(), *(self._store.list_latest(adhoc=True) if include_adhoc else [])]
        return sorted((r for r in latest if include_inactive or r.get("active", True)),
                      key=lambda r: (r["name"], r.get("namespace") or "", r.get("tenant_id") or ""))

    def deactivate(self, name: str, by: str | None) -> dict[str, Any]:
        """No new instance starts from now on; running instances finish on their revision."""
        found = self._store.set_active(name, False, {"deactivated_at": self._now(), "deactivated_by": by})
        if found is None:
            raise NotFound(f"no definition named '{shown(name)}'")
        return {"name": shown(name), "active": False, "purged": False}

    def purge(self, name: str, by: str | None, open_instances: Callable[[str], int],
              before_removal: Callable[[str], Any] | None = None) -> dict[str, Any]:
        """Removes every revision once no instance of the workflow is open (pending, running or waiting).

        Deactivated first, so no start slips in between the count and the removal; refused (and left
        as it was) while instances are open. `before_removal(name)` removes what belongs to the workflow
        (its triggers and schedules) before the definition goes: a purge cut short in between is repeated
        by the client's retry, which still finds the definition."""
        if self._store.latest(name) is None:
            raise NotFound(f"no definition named '{shown(name)}'")
        if open_instances(name):
            raise Conflict(f"definition '{shown(name)}' has {open_instances(name)} open instance(s); cancel them or let "
                           "them end, then purge (DELETE without purge deactivates it meanwhile)")
        self.deactivate(name, by)
        still_open = open_instances(name)
        if still_open:
            raise Conflict(f"definition '{shown(name)}' has {still_open} open instance(s); it is deactivated, purge "
                           "again once they end")
        if before_removal is not None:
            before_removal(name)
        self._store.remove(name)
        self._revision.cache_clear()
        return {"name": shown(name), "active": False, "purged": True}

    def asl(self, name: str, version: str | None = None, revision: str | None = None) -> dict[str, Any]:
        record = self.get(name, version, revision)
        return compile_definition(Definition.model_validate(record["body"]), record["revision"], _options(name))

    def restore_state_machines(self) -> builtins.list[str]:
        """Creates each workflow's state machine again from its latest revision: for a Step Functions that
        lost them while the store kept the definitions (the local runtime after a restart). A pointer whose
        recorded ARN differs from the new one (another account or region) is moved to it. The names."""
        bindings = self._placeholders()
        restored = []
        for latest in [*self._store.list_latest(), *self._store.list_latest(adhoc=True)]:
            try:
                record = self.get(latest["key"])
                asl = compile_definition(Definition.model_validate(record["body"]), record["revision"],
                                         _options(latest["key"]))
                arn = self._machines.ensure(latest["key"], bind_placeholders(asl, bindings))
            except Exception:  # noqa: BLE001 - one damaged record must not keep the others from running
                log.warning("the state machine of workflow %s could not be restored", latest["name"], exc_info=True)
                continue
            if arn != latest.get("state_machine_arn"):
                self._store.point_to({**record, "state_machine_arn": arn})
            restored.append(record["name"])
        return restored
