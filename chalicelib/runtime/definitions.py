"""Loads a stored definition revision for the Lambda handlers; revisions never change, so they are cached."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chalicelib.core.graph import build_graph
from chalicelib.core.model import Definition


@dataclass(frozen=True)
class LoadedDefinition:
    definition: Definition
    order: tuple[str, ...]  # the merge order of step outputs into instance data
    tenant_id: str | None = None  # who registered it: its steps resolve this tenant's credentials


class RevisionLoader:
    def __init__(self, fetch: Callable[[str, str], dict[str, Any] | None], cache_size: int = 64):
        self._fetch = fetch
        self.load = lru_cache(maxsize=cache_size)(self._load)

    def _load(self, workflow: str, revision: str) -> LoadedDefinition:
        record = self._fetch(workflow, revision)
        if record is None:
            raise LookupError(f"definition {workflow} revision {revision} is not stored")
        definition = Definition.model_validate(record["body"])
        order = build_graph(definition).topological_order() or []
        return LoadedDefinition(definition, tuple(order), record.get("tenant_id"))
