"""A human step's due date from instance data: a path to a timestamp, optionally with an offset."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core.instance_data import get_path
from chalicelib.core.model import DOTTED_PATH_PATTERN, parse_duration

_PATH = DOTTED_PATH_PATTERN.strip("^$")
# "deadline", "{{ deadline }}", "{{ submitted_at }} + 2d", "{{ event.at }} - PT1H"
_DUE_RE = re.compile(rf"^\s*(?:(?P<bare>{_PATH})|\{{\{{\s*(?P<path>{_PATH})\s*\}}\}}"
                     rf"(?:\s*(?P<sign>[+-])\s*(?P<offset>\S.*?))?)\s*$")


@dataclass(frozen=True)
class DueRule:
    path: str
    offset_seconds: int = 0


class DueDataError(ValueError):
    """The instance data gives no due date by the rule (the path is missing or not a timestamp)."""


def parse_due(text: str) -> DueRule:
    """The rule a `due_at` expression states; ValueError saying what is wrong."""
    match = _DUE_RE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a due date: use a data path ('deadline') or a path with an offset "
                         "('{{ submitted_at }} + 2d')")
    if match["bare"]:
        return DueRule(match["bare"])
    offset = 0
    if match["offset"] is not None:
        offset = parse_duration(match["offset"].strip())
        offset = -offset if match["sign"] == "-" else offset
    return DueRule(match["path"], offset)


def due_from(rule: DueRule, data: Any) -> datetime:
    """The due date the rule gives on `data`; DueDataError when it gives none."""
    try:
        value = get_path(data, rule.path)
    except KeyError:
        raise DueDataError(f"due_at: '{rule.path}' is not in the instance data") from None
    if not isinstance(value, str):
        raise DueDataError(f"due_at: '{rule.path}' is not a timestamp (an ISO 8601 text such as "
                           "2026-01-05T09:00:00Z)")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DueDataError(f"due_at: '{rule.path}' is not a timestamp (an ISO 8601 text such as "
                           "2026-01-05T09:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a timestamp without a zone is taken as UTC
    return moment + timedelta(seconds=rule.offset_seconds)
