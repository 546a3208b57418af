"""The check every error answer of the hostile-input and step-error tests goes through: no internals."""

from __future__ import annotations

LEAKS = ("Traceback", 'File "', "/work", ".py")


def texts(value: object) -> list[str]:
    """Every key and string in a decoded body."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (str(k), *texts(v))]
    if isinstance(value, list):
        return [t for v in value for t in texts(v)]
    return [value] if isinstance(value, str) else []


def leaks(body: object) -> list[str]:
    """The markers of internals (a traceback, a server path, a source file) found anywhere in a body."""
    text = "\n".join(texts(body))
    return [marker for marker in LEAKS if marker in text]
