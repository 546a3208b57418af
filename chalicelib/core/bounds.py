"""Limits on client-supplied JSON and YAML text: nesting depth and value count, checked without recursion."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

MAX_DEPTH = 64  # nested objects/arrays; every definition, input and form stays far below this
MAX_VALUES = 50_000  # values in one document, YAML aliases counted as the values they stand for
MAX_ALIASES = 100  # YAML aliases in one document

# A JSON string token (escapes included) or anything else; strings are blanked before brackets are counted.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class TooDeep(ValueError):
    """The text nests deeper, or holds more values, than the service reads."""


def check_json_text(text: str) -> None:
    """Refuses JSON nested deeper than MAX_DEPTH or holding more than MAX_VALUES values.

    A linear scan of the text (no recursion, no parsing), so it runs before json.loads, whose C decoder
    recurses and raises RecursionError on deep input. Malformed text passes here and fails in json.loads.
    """
    blank = _JSON_STRING.sub('""', text)
    brackets = _NOT_BRACKET.sub("", blank)
    if brackets and max(accumulate(_STEP[c] for c in brackets)) > MAX_DEPTH:
        raise TooDeep(f"the JSON nests deeper than {MAX_DEPTH} levels")
    # Every value but the first follows a comma or opens a container: an upper bound on the count.
    values = blank.count(",") + blank.count("[") + blank.count("{") + 1
    if values > MAX_VALUES:
        raise TooDeep(f"the JSON holds more than {MAX_VALUES:,} values")


def loads_json(text: str) -> Any:
    """json.loads after check_json_text; raises TooDeep or ValueError."""
    check_json_text(text)
    return json.loads(text)


class _BoundedComposer(Composer):
    """PyYAML's composer, counting while it composes, before anything is constructed.

    Composing is where an alias bomb is still harmless (an alias is one shared node) and construction or
    any later walk is where it explodes, so the node tree is measured here: depth, values, and each alias
    counted as the number of values it stands for. Over a bound, composition stops with TooDeep.
    """

    def _start_counting(self) -> None:
        self._depth = 0
        self._values = 0
        self._aliases = 0
        self._anchor_values: dict[str, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            anchor = self.peek_event().anchor
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise TooDeep(f"the YAML uses more than {MAX_ALIASES} aliases")
            self._count(self._anchor_values.get(anchor, 1))
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise TooDeep(f"the YAML nests deeper than {MAX_DEPTH} levels")
        before = self._values
        self._count(1)
        anchor = self.peek_event().anchor
        node = super().compose_node(parent, index)
        if anchor is not None:
            self._anchor_values[anchor] = self._values - before
        self._depth -= 1
        return node

    def _count(self, values: int) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise TooDeep(f"the YAML holds more than {MAX_VALUES:,} values (aliases counted as what they repeat)")


class BoundedSafeLoader(_BoundedComposer, yaml.SafeLoader):
    """SafeLoader with the bounded composer (pure Python)."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self._start_counting()


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _BoundedCLoader(_BoundedComposer, CParser, SafeConstructor, Resolver):  # type: ignore[misc]
        """The same, reading events from libyaml: its scanner is C, where PyYAML's pure-Python one spends
        quadratic time on deeply nested flow collections ([[[[...) before the composer sees the depth."""

        def __init__(self, stream: Any):
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)
            self._start_counting()

    _Loader: type[Any] = _BoundedCLoader
else:  # pragma: no cover - PyYAML's wheels ship libyaml
    _Loader = BoundedSafeLoader


def load_yaml(text: str) -> Any:
    """One YAML document, composed with bounded depth, values and aliases; raises TooDeep or yaml.YAMLError."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
