"""Every log line's last filter: secrets and tokens redacted, and JSON records and plain-text lines alike
capped under 8 KB."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

# A field named like a secret is logged as REDACTED whatever it holds; inside text, bearer tokens, JWTs and
# values after a secret-like name (`token=...`, `"password": "..."`) are cut out. The step runner redacts a
# run's credential values itself (runtime/step_runner.py); this catches what any other code lets slip.
REDACTED = "***"
SECRET_KEY = re.compile(r"(secret|token|password|passwd|authorization|api[_-]?key|signature|credential_value|"
                        r"private[_-]?key|cookie)", re.IGNORECASE)
_IN_TEXT = (
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),  # a JWT
    re.compile(r"(?i)((?:secret|token|password|passwd|api[_-]?key|signature)[\"']?\s*[:=]\s*[\"']?)"
               r"[^\s\"',;&]{4,}"),
)
_KEPT_KEYS = frozenset({"level", "location", "timestamp", "service", "truncated", "message"})


def redact_text(text: str) -> str:
    for pattern in _IN_TEXT:
        text = pattern.sub(lambda m: (m.group(1) + (" " if m.group(1).lower() == "bearer" else "") + REDACTED)
                           if m.groups() else REDACTED, text)
    return text


def redact(value: Any, key: str = "") -> Any:
    """`value` with secret-named fields replaced and secrets cut out of its text, recursively."""
    # Counts and flags under such a name (tokens_used, has_secret) say nothing secret: kept.
    if key and key not in _KEPT_KEYS and SECRET_KEY.search(key) and isinstance(value, str | bytes | dict | list) \
            and value:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value

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
    """The log record, redacted, as one JSON line of at most `limit` bytes: the longest fields are cut first."""
    log = redact(log)
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
        return cap_text(redact_text(super().format(record)))
