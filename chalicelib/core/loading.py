"""Reads definitions written as JSON or YAML text, and names each version by its content."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from chalicelib.core.bounds import TooDeep, load_yaml
from chalicelib.core.model import Definition


class DefinitionTextError(ValueError):
    """The text is neither JSON nor YAML that holds an object."""


class NotAnObject(DefinitionTextError):
    """The text is JSON or YAML, but not an object: readable, yet not a definition."""


def load_definition_text(text: str) -> Any:
    """Parses JSON or YAML (YAML is a superset of JSON); safe loading, with bounded depth, size and aliases."""
    try:
        data = load_yaml(text)
    except TooDeep as exc:
        raise DefinitionTextError(str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DefinitionTextError(f"not valid JSON or YAML{where}") from exc
    if not isinstance(data, dict):
        raise NotAnObject("a definition must be an object with name and steps")
    return data


def canonical_json(definition: Definition) -> str:
    dumped = definition.model_dump(mode="json", exclude_defaults=False)
    if dumped.get("scheduling") == "exact":
        del dumped["scheduling"]  # the default, added later: definitions written before it keep their revision
    return json.dumps(dumped, sort_keys=True, separators=(",", ":"))


def revision_of(definition: Definition) -> str:
    """A short content hash: the same definition always has the same revision."""
    return hashlib.sha256(canonical_json(definition).encode()).hexdigest()[:16]
