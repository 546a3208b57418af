"""Patches to moto's DynamoDB update expressions: each expression parsed once, and its syntax tree copied
for validation by a walk of the tree rather than by copy.deepcopy.

Every conditional write of the app is an UpdateItem whose expression names its attributes by placeholder
(`SET #s0 = :s0, ...`), so the same few expression strings come back all the time. moto parses each one
twice per request (the handler, to list its placeholders, and the backend) and then deep-copies the tree
before validation rewrites it: together about 60 % of an UpdateItem's time, all of it under the DynamoDB
lock. Parsed trees are cached by expression (they are only read: the one place that rewrites a tree,
moto's Validator, copies it first), and the Validator's copy is made by a walk that builds the same
nodes as copy.deepcopy, several times faster; any tree of another shape is copied by copy.deepcopy.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from stepflow_local.moto_contract import ORIGINALS, check_signature

PARSE_CACHE_SIZE = 1024
_NODE_ATTRIBUTES = frozenset({"type", "children", "parent"})  # all a parsed node holds (moto 5.2.5)
_ATOMIC = (str, int, float, bool, type(None))


class _OtherShape(Exception):
    """A tree that holds something other than nodes and plain values: copy.deepcopy copies it."""


def _clone(node: Any, parent: Any, node_type: type, seen: set[int]) -> Any:
    state = node.__dict__
    if state.keys() != _NODE_ATTRIBUTES or id(node) in seen:
        raise _OtherShape  # another kind of node, or one node twice in the tree (deepcopy would share it)
    seen.add(id(node))
    children = state["children"]
    if children is not None and type(children) is not list:
        raise _OtherShape
    new = node.__class__.__new__(node.__class__)
    copied: list[Any] | None = None
    if children is not None:
        copied = []
        for child in children:
            if isinstance(child, node_type):
                copied.append(_clone(child, new, node_type, seen))
            elif type(child) in _ATOMIC:
                copied.append(child)
            else:
                raise _OtherShape
    new.__dict__.update(type=state["type"], children=copied, parent=parent)
    return new


def copy_tree(value: Any) -> Any:
    """copy.deepcopy(value), faster for a parsed expression's root (a node without a parent)."""
    from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]  # moto exports it untyped

    if isinstance(value, Node) and value.__dict__.get("parent", ...) is None:
        try:
            return _clone(value, None, Node, set())
        except _OtherShape:
            pass
    return copy.deepcopy(value)


copy_tree.__stepflow_patched__ = True  # type: ignore[attr-defined]


def _memoised_make(original: Any) -> Any:
    # original is the bound classmethod; the cache holds the parsed tree, which callers only read.
    @functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
    def parse(expression: str) -> Any:
        return original(expression)

    @functools.wraps(original)
    def make(cls: Any, expression_str: Any) -> Any:
        if type(expression_str) is not str:
            return original(expression_str)
        return parse(expression_str)

    make.__stepflow_patched__ = True  # type: ignore[attr-defined]
    make.cache_info = parse.cache_info  # type: ignore[attr-defined]
    return classmethod(make)


def patch() -> None:
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]  # untyped in moto

    current = UpdateExpressionParser.__dict__.get("make")
    if getattr(getattr(current, "__func__", None), "__stepflow_patched__", False):
        return
    if not isinstance(current, classmethod):
        raise RuntimeError("moto's UpdateExpressionParser.make is no longer a classmethod; "
                           "re-check stepflow_local/moto_expressions.py")
    check_signature(current.__func__, ["cls", "expression_str"], "UpdateExpressionParser.make")
    if getattr(validators, "deepcopy", None) is not copy.deepcopy:
        raise RuntimeError("moto's validators no longer use copy.deepcopy; re-check stepflow_local/moto_expressions.py")
    check_signature(validators.Validator.__init__, ["self", "expression", "expression_attribute_names",
                                                    "expression_attribute_values", "item", "table"],
                    "Validator.__init__")
    ORIGINALS["UpdateExpressionParser.make"] = current
    ORIGINALS["validators.deepcopy"] = validators.deepcopy
    setattr(UpdateExpressionParser, "make", _memoised_make(UpdateExpressionParser.make))  # noqa: B010
    setattr(validators, "deepcopy", copy_tree)  # noqa: B010


def patched() -> bool:
    """True when update expressions are parsed once and copied by the walk."""
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]  # untyped in moto

    make = UpdateExpressionParser.__dict__.get("make")
    return bool(getattr(getattr(make, "__func__", None), "__stepflow_patched__", False)
                and getattr(validators.deepcopy, "__stepflow_patched__", False))
