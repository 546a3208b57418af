"""Credentials in step config: finding the names a config references, and redacting resolved values.

A step names a credential in two ways: a ``{{ secrets.NAME }}`` placeholder in a templated config
value, or a config field a task type declares as holding a credential name (http.request's
``auth.credential``). Only the step runner turns names into values, at run time; whatever the step
then produces (output, error, events, log lines) passes through a ``Redactor`` first, which puts
``***`` wherever a value, or a form of it a request would carry (base64, JSON-escaped, URL-encoded),
appears.

Pure Python: no AWS, no environment reads.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from chalicelib.tasks import templating

CREDENTIAL_MISSING = "Stepflow.CredentialMissing"  # the step names a credential its tenant does not have
SECRETS_ROOT = templating.SECRETS_ROOT  # {{ secrets.NAME }}: the placeholder root that names a credential
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
NAME_RE = re.compile(NAME_PATTERN)
MASK = "***"
# Redaction looks for the value in free text: a value this short would match ordinary words.
MIN_VALUE_LENGTH = 8
MAX_VALUE_BYTES = 8192


def is_secret_path(path: str) -> bool:
    """Whether a placeholder path names a credential (``secrets.NAME``) rather than instance data."""
    head, _, _ = path.strip().partition(".")
    head = head.split("[", 1)[0]
    return head == SECRETS_ROOT


def secret_name(path: str) -> str | None:
    """NAME for ``secrets.NAME``; None when the path is not of that exact shape."""
    parts = path.strip().split(".")
    if len(parts) == 2 and parts[0] == SECRETS_ROOT and NAME_RE.fullmatch(parts[1]):
        return parts[1]
    return None


def _field(config: Any, dotted: str) -> Any:
    current = config
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def references(config: Any, *, raw_keys: Iterable[str] = (),
               credential_fields: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(location, name) of every credential a step's config names, in document order.

    A malformed reference (``{{ secrets }}``, ``{{ secrets.a.b }}``, a bad name) comes back with name
    ``""``: validation reports it. Placeholders in raw (untemplated) keys are not references.
    """
    if not isinstance(config, dict):
        return []
    raw = set(raw_keys)
    found: list[tuple[str, str]] = []
    templated = {key: value for key, value in config.items() if key not in raw}
    for placeholder in templating.find_placeholders(templated, "config"):
        if is_secret_path(placeholder.path):
            found.append((placeholder.location, secret_name(placeholder.path) or ""))
    for dotted in credential_fields:
        value = _field(config, dotted)
        if value is not None:
            found.append((f"config.{dotted}", value if isinstance(value, str) and NAME_RE.fullmatch(value) else ""))
    return found


def value_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a credential's value, or None."""
    if not isinstance(value, str):
        return "the value must be a string"
    if len(value) < MIN_VALUE_LENGTH:
        return f"the value must be at least {MIN_VALUE_LENGTH} characters (redaction needs a distinctive value)"
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        return f"the value must be at most {MAX_VALUE_BYTES} bytes"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "the value cannot contain control characters (line breaks included)"
    return None


class Redactor:
    """Replaces resolved credential values, and the encodings a request carries them in, by ``***``."""

    def __init__(self, values: Iterable[str] = ()):
        forms: set[str] = set()
        for value in values:
            if not value:
                continue
            forms.add(value)
            forms.add(base64.b64encode(value.encode("utf-8")).decode("ascii"))
            forms.add(json.dumps(value)[1:-1])
            forms.add(quote(value, safe=""))
        # Longest first: a value inside another's encoding is replaced as part of the longer one.
        self._forms = sorted((f for f in forms if len(f) >= MIN_VALUE_LENGTH), key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(f) for f in self._forms)) if self._forms else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        if self._pattern is None:
            return value
        return self._pattern.sub(MASK, value)

    def __call__(self, value: Any) -> Any:
        """``value`` with every string (dict keys included) redacted; containers are copied."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self(key) if isinstance(key, str) else key: self(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(item) for item in value]
        return value
