"""Config templating: ``{{ path }}`` placeholders filled from a step's instance data.

Rules (these are the whole language; there are no filters, expressions or defaults):

* Placeholders only appear in string *values*; dict keys are never rendered. Rendering walks
  dicts and lists recursively and returns new containers (the input is not modified).
* A string that is exactly one placeholder (``"{{ customer.age }}"``, no text around it)
  renders to the referenced value with its JSON type: a number stays a number, an object
  stays an object, ``null`` stays ``None``.
* Placeholders embedded in longer text are stringified: strings as-is, numbers with
  ``str()``, booleans and null in JSON spelling (``true``, ``false``, ``null``), objects
  and arrays with ``json.dumps`` (``{"a": 1}``). Example: ``"Hi {{ name }}, {{ n }} items"``.
* Paths are dotted: ``customer.name``. List elements are addressed with a non-negative
  integer, either as a segment or in brackets: ``items.0.sku`` == ``items[0].sku``. An integer
  segment applied to an object looks up the string key (``totals.2024``). Spaces inside the
  braces are ignored. Keys containing ``.``, ``[``, ``]``, ``{``, ``}`` or whitespace cannot
  be addressed.
* A path that does not exist (missing key, index out of range, descending into a scalar)
  is an error: ``StepError("Stepflow.TemplateError", "config.values.x: 'customer.name' is
  not in the instance data")``. An existing key whose value is ``null`` is not missing.
* Escaping: a backslash right before the braces, ``\\{{``, renders as a literal ``{{`` and
  starts no placeholder (in JSON source that is ``"\\\\{{ not a placeholder }}"``). A ``{{``
  that is never closed by ``}}`` is plain text and needs no escape.
* ``{{ ... }}`` whose content contains ``{`` or ``}`` is plain text, not a placeholder.
* ``{{ secrets.NAME }}`` names a credential, not instance data: it is filled from the ``secrets``
  mapping the step runner resolved (chalicelib/tasks/credentials.py), never from the data (an
  instance field called ``secrets`` cannot be reached by a placeholder).

Locations in messages use the same notation as config validation issues:
``config.values.x``, ``config.headers.Accept``, ``config.items[0]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from chalicelib.tasks.errors import TEMPLATE_ERROR, StepError

__all__ = [
    "TEMPLATE_ERROR",
    "Placeholder",
    "find_placeholders",
    "format_location",
    "has_placeholder",
    "is_single_placeholder",
    "parse_path",
    "placeholder_errors",
    "placeholders",
    "render",
    "resolve",
]

# Either an escaped "{{" (group 1) or a placeholder whose content is group 2.
_TOKEN_RE = re.compile(r"(\\\{\{)|\{\{([^{}]*)\}\}")
_SINGLE_RE = re.compile(r"\{\{([^{}]*)\}\}")
_SEGMENT_RE = re.compile(r"([^.\[\]\s{}]+)((?:\[\d+\])*)")
_INDEX_RE = re.compile(r"\[(\d+)\]")

_MISSING = object()
SECRETS_ROOT = "secrets"


class Placeholder(NamedTuple):
    """One placeholder: where it is (``config.values.x``) and its path, stripped, as written."""

    location: str
    path: str


def format_location(base: str, parts: Any) -> str:
    """``format_location("config", ["items", 0, "sku"])`` -> ``config.items[0].sku``."""
    text = base
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def parse_path(path: str) -> tuple[str, ...]:
    """Split a placeholder path into segments: ``"items[0].sku"`` -> ``("items", "0", "sku")``.

    Raises ValueError with a readable reason when the path is not well formed.
    """
    text = path.strip()
    if not text:
        raise ValueError("empty placeholder")
    segments: list[str] = []
    for raw in text.split("."):
        match = _SEGMENT_RE.fullmatch(raw)
        if not match:
            raise ValueError(f"'{text}' is not a valid path (use names separated by dots, items[0] for lists)")
        segments.append(match.group(1))
        segments.extend(_INDEX_RE.findall(match.group(2)))
    return tuple(segments)


def resolve(data: Any, path: str) -> Any:
    """The value at ``path`` in ``data``; raises KeyError(path) when it is not there."""
    current = data
    for segment in parse_path(path):
        current = _step(current, segment)
        if current is _MISSING:
            raise KeyError(path.strip())
    return current


def _step(current: Any, segment: str) -> Any:
    if isinstance(current, dict):
        return current.get(segment, _MISSING)
    if isinstance(current, (list, tuple)) and segment.isdigit():
        index = int(segment)
        return current[index] if index < len(current) else _MISSING
    return _MISSING


def has_placeholder(text: str) -> bool:
    return any(m.group(2) is not None for m in _TOKEN_RE.finditer(text))


def is_single_placeholder(value: Any) -> bool:
    """True for a string that is exactly one placeholder (renders to a typed value)."""
    return isinstance(value, str) and _SINGLE_RE.fullmatch(value) is not None


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _lookup(data: Any, path: str, location: str, secrets: Mapping[str, str] | None = None) -> Any:
    head = path.strip().partition(".")[0].split("[", 1)[0]
    if head == SECRETS_ROOT:
        parts = path.strip().split(".")
        if secrets is None or len(parts) != 2 or parts[1] not in secrets:
            raise StepError(TEMPLATE_ERROR, f"{location}: the credential '{path.strip()}' was not resolved") from None
        return secrets[parts[1]]
    try:
        return resolve(data, path)
    except ValueError as exc:
        raise StepError(TEMPLATE_ERROR, f"{location}: {exc}") from None
    except KeyError:
        raise StepError(TEMPLATE_ERROR, f"{location}: '{path.strip()}' is not in the instance data") from None


def _render_string(text: str, data: Any, location: str, secrets: Mapping[str, str] | None) -> Any:
    single = _SINGLE_RE.fullmatch(text)
    if single:
        return _lookup(data, single.group(1), location, secrets)

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return "{{"
        return _stringify(_lookup(data, match.group(2), location, secrets))

    return _TOKEN_RE.sub(replace, text)


def render(value: Any, data: Any, location: str = "config", secrets: Mapping[str, str] | None = None) -> Any:
    """Render every placeholder in ``value`` (strings, dicts, lists) against ``data``.

    ``location`` names ``value`` in error messages (``config.values.x: ...``); ``secrets`` holds the
    resolved credentials ``{{ secrets.NAME }}`` names.
    Raises StepError("Stepflow.TemplateError") for a missing path or a malformed placeholder.
    """
    if isinstance(value, str):
        return _render_string(value, data, location, secrets)
    if isinstance(value, dict):
        return {key: render(item, data, format_location(location, [key]), secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(item, data, format_location(location, [i]), secrets) for i, item in enumerate(value)]
    return value


def _walk_strings(value: Any, location: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield location, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_strings(item, format_location(location, [key]))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk_strings(item, format_location(location, [i]))


def find_placeholders(value: Any, location: str = "config") -> list[Placeholder]:
    """Every placeholder in ``value``, in document order, with its location (duplicates kept)."""
    found: list[Placeholder] = []
    for where, text in _walk_strings(value, location):
        for match in _TOKEN_RE.finditer(text):
            if match.group(2) is not None:
                found.append(Placeholder(where, match.group(2).strip()))
    return found


def placeholders(value: Any) -> list[str]:
    """The paths referenced by ``value``, as written (stripped), first occurrence order, no duplicates."""
    seen: dict[str, None] = {}
    for placeholder in find_placeholders(value):
        seen.setdefault(placeholder.path, None)
    return list(seen)


def placeholder_errors(value: Any, location: str = "config") -> list[tuple[str, str]]:
    """(location, message) for every malformed placeholder (empty, bad path syntax)."""
    errors = []
    for placeholder in find_placeholders(value, location):
        try:
            parse_path(placeholder.path)
        except ValueError as exc:
            errors.append((placeholder.location, str(exc)))
    return errors
