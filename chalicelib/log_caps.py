"""Caps on the size of one log line: JSON records and plain-text lines alike stay under 8 KB."""

from __future__ import annotations

import json
import logging
from typing import Any

# CloudWatch Logs takes events up to 256 KB, but one request's line should never crowd out the rest:
# a message, an exception or an extra field past this is cut and the line marked `truncated: true`.
MAX_LINE_BYTES = 8 * 1024
_ROOM = MAX_LINE_BYTES - 1  # the handler ends each line with a newline
_PINNED = frozenset({"level", "location", "timestamp", "service", "truncated"})  # never shortened
_TEXT_MARK = " [truncated: true]"


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def capped_json(log: dict[str, Any], limit: int = _ROOM) -> str:
    """The log record as one JSON line of at most `limit` bytes: the longest fields are cut first."""
    line = _dumps(log)
    if _size(line) <= limit:
        return line
    record = {**log, "truncated": True}
    while True:
        line = _dumps(record)
        excess = _size(line) - limit
        if excess <= 0:
            return line
        texts = {k: v if isinstance(v, str) else _dumps(v) for k, v in record.items() if k not in _PINNED}
        by_length = sorted(texts, key=lambda k: len(texts[k]), reverse=True)
        if not by_length or len(texts[by_length[0]]) <= 2:  # nothing left to cut: a minimal line
            return _dumps({k: record[k] for k in ("level", "timestamp", "service") if k in record}
                          | {"message": "(log line too large)", "truncated": True})
        key = by_length[0]
        text = texts[key]
        runner_up = len(texts[by_length[1]]) if len(by_length) > 1 else 0
        # Cut the longest field by what the line is over, but not below the next one (or half of itself):
        # two big fields end up sharing the room instead of the first one losing everything.
        keep = max(len(text) - excess - 1, min(runner_up, len(text) // 2))
        record[key] = text[:keep] + "…"


def cap_text(line: str, limit: int = _ROOM) -> str:
    """A plain-text line cut to `limit` bytes, ending in `[truncated: true]` when it was cut."""
    if _size(line) <= limit:
        return line
    room = limit - _size(_TEXT_MARK)
    return line.encode("utf-8")[:room].decode("utf-8", errors="ignore") + _TEXT_MARK


class CappedTextFormatter(logging.Formatter):
    """A stdlib text formatter whose lines (traceback included) fit in MAX_LINE_BYTES with their newline."""

    def format(self, record: logging.LogRecord) -> str:
        return cap_text(super().format(record))
