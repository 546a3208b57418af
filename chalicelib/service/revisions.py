"""A definition's history: its revisions, each as submitted, diffs between two, restore, and export and
import as a document another Stepflow accepts.

A definition is addressed by its key (core/definition_keys.py): `name` below is the key the route
resolved, its bare name when it has no tenant or namespace; what is shown and exported is the bare name."""

from __future__ import annotations

from typing import Any

from chalicelib.core.compiler import CompileOptions, compile_definition
from chalicelib.core.definition_keys import name_of
from chalicelib.core.loading import DefinitionTextError, load_definition_text, revision_of
from chalicelib.core.model import Definition
from chalicelib.core.revisions import source_diff, structural_diff
from chalicelib.errors import InvalidInput

EXPORT_FORMAT = "stepflow.definition/v1"
MAX_IMPORTED_REVISIONS = 50  # each one is a check, a compile and a state machine update
ENTRY_FIELDS = ("number", "revision", "version", "created_at", "created_by", "change", "restored_from", "source_format")


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry.get(k) for k in ENTRY_FIELDS}


def _invalid(location: str, message: str) -> InvalidInput:
    return InvalidInput({"message": "the document is not valid", "issues": [
        {"code": "invalid_import", "location": location, "message": message}]})


class RevisionService:
    def __init__(self, definitions: Any, store: Any):
        self._definitions = definitions
        self._store = store

    def list(self, name: str) -> list[dict[str, Any]]:
        """Newest first, without the sources."""
        self._definitions.get(name)  # 404 for an unknown workflow rather than an empty list
        return [_entry(e) for e in self._store.history(name)]

    def detail(self, name: str, revision: str) -> dict[str, Any]:
        """One revision: the source exactly as submitted, the normalised definition and its compiled ASL."""
        entry = self._definitions.entry(name, revision)
        body = self._definitions.get_revision(name, entry["revision"])["body"]
        asl = compile_definition(Definition.model_validate(body), entry["revision"], CompileOptions(workflow=name))
        return {"name": name_of(name), **_entry(entry), "source": entry.get("source"), "definition": body, "asl": asl}

    def diff(self, name: str, revision: str, to: str) -> dict[str, Any]:
        """From `revision` to `to`: a unified diff of the sources and the structural diff of the definitions."""
        old, new = self._definitions.entry(name, revision), self._definitions.entry(name, to)
        bodies = [Definition.model_validate(self._definitions.get_revision(name, e["revision"])["body"])
                  for e in (old, new)]
        shown = name_of(name)
        return {
            "name": shown, "from": _entry(old), "to": _entry(new),
            "source_diff": source_diff(old.get("source") or "", new.get("source") or "",
                                       f"{shown}@{old['number']}", f"{shown}@{new['number']}"),
            "structural": structural_diff(bodies[0], bodies[1]),
        }

    def restore(self, name: str, revision: str, created_by: str | None, tenant_id: str | None) -> dict[str, Any]:
        """A new revision equal to this one (the same content, the same source); when it already is the
        latest, nothing changes."""
        entry = self._definitions.entry(name, revision)
        body = self._definitions.get_revision(name, entry["revision"])["body"]
        return self._definitions.register(body, created_by, tenant_id, source=entry.get("source"),
                                          source_format=entry.get("source_format") or "json", name=name_of(name),
                                          restored_from=int(entry["number"]), key=name)

    def export(self, name: str, with_history: bool, revision: str | None = None) -> dict[str, Any]:
        """The latest revision, or the one `revision` names (404 when the workflow has no such revision)."""
        if revision is not None:
            entry = self._definitions.entry(name, revision)
            latest = self._definitions.get_revision(name, entry["revision"])
        else:
            latest = self._definitions.get(name)
            entry = self._store.entry(name, int(latest["revision_number"])) if latest.get("revision_number") else None
        document: dict[str, Any] = {
            "format": EXPORT_FORMAT, "name": name_of(name), "version": latest["version"], "revision": latest["revision"],
            "source": (entry or {}).get("source"), "source_format": (entry or {}).get("source_format"),
            "definition": latest["body"],
        }
        if with_history:
            document["revisions"] = [{**_entry(e), "source": e.get("source")}
                                     for e in self._store.history(name, newest_first=False, with_source=True)]
        return document

    def import_(self, document: Any, created_by: str | None, tenant_id: str | None,
                resolve: Any) -> dict[str, Any]:
        """Registers an exported document: its revisions oldest first when it carries them, then its latest.
        Every part is read and checked before anything is stored. `resolve`: the key the document's name
        is registered under (the caller's tenant's and namespace's)."""
        if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
            raise _invalid("format", f"not a Stepflow export: 'format' must be '{EXPORT_FORMAT}'")
        name = document.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid("name", "the document names no definition")
        revisions = document.get("revisions") or []
        if not isinstance(revisions, list) or len(revisions) > MAX_IMPORTED_REVISIONS:
            raise _invalid("revisions", f"'revisions' must be a list of at most {MAX_IMPORTED_REVISIONS}")
        parts = [self._part(r, f"revisions.{i}", name) for i, r in enumerate(revisions)]
        parts.append(self._part(document, "document", name))
        key = resolve(name)  # None for what cannot be a name: registering it then says why
        if key is not None and self._store.latest(key) is not None:
            # A definition this service has already keeps its own history: the document's latest revision
            # is registered (a new revision when it differs), its history is not replayed over this one.
            parts = parts[-1:]
        created = 0
        record: dict[str, Any] = {}
        for data, source, source_format in parts:
            record = self._definitions.register(data, created_by, tenant_id, source=source,
                                                source_format=source_format, name=name, key=key)
            created += int(record.pop("created"))
        return {"name": name, "revision": record["revision"], "revisions_created": created}

    @staticmethod
    def _part(part: Any, where: str, name: str) -> tuple[Any, str | None, str]:
        """(definition data, source, its format) of one revision in a document; the source, when there
        is one, is what is registered, and must say the same as the definition next to it."""
        if not isinstance(part, dict):
            raise _invalid(where, "a revision must be an object")
        source, body = part.get("source"), part.get("definition")
        source_format = "json" if part.get("source_format") == "json" else "yaml"
        if source is not None:
            if not isinstance(source, str):
                raise _invalid(f"{where}.source", "'source' must be text")
            try:  # the same bounded loader as every other definition text (depth, size, aliases)
                data = load_definition_text(source)
            except DefinitionTextError as exc:
                raise _invalid(f"{where}.source", str(exc)) from None
            if isinstance(body, dict) and _content(body) != _content(data):
                raise _invalid(f"{where}.source", "the source and the definition beside it differ")
        elif isinstance(body, dict):
            data = body
        else:
            raise _invalid(where, "a revision needs its 'source' or its 'definition'")
        if data.get("name") != name:
            raise _invalid(f"{where}.name", f"every revision must be of '{name}'")
        return data, source, source_format


def _content(data: dict[str, Any]) -> str | None:
    """The content revision of a definition's data (None when it is not a valid definition)."""
    try:
        return revision_of(Definition.model_validate(data))
    except ValueError:
        return None
