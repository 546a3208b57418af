"""Finds the line of a definition file that an API issue's `location` (e.g. `steps[2].depends_on[0]`) points at."""

from __future__ import annotations

import re

import yaml

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def path_of(location: str) -> list[str | int]:
    """`steps[2].config.url` -> ["steps", 2, "config", "url"]."""
    return [int(index) if index else key for key, index in _TOKEN.findall(location or "")]


def lines_of(text: str) -> yaml.Node | None:
    """The file's node tree (positions, no values built: aliases are not expanded), or None if it does not parse."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None


def line_of(root: yaml.Node | None, location: str) -> int | None:
    """The 1-based line of the deepest node on the location's path that the file has."""
    if root is None:
        return None
    node, line = root, None
    for step in path_of(location):
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == step:
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            child = node.value[step]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
