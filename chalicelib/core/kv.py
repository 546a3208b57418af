"""The key-value store's rules: names, sizes, time to live, versions (ETags) and the partition key."""

from __future__ import annotations

import json
import math
import re
from typing import Any

# A namespace never holds "|": the partition key is "<namespace>|<tenant>", split at the first "|".
NAMESPACE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Keys are one path segment (no "/"), printable, and sort by their bytes (a prefix lists a range).
KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@=+~-]{0,254}")
MAX_PREFIX = 255
# The value's JSON text: a DynamoDB item holds at most 400 KB, and a step's payload at most 256 KiB.
MAX_VALUE_BYTES = 256 * 1024
MAX_TTL_SECONDS = 366 * 24 * 3600
MAX_PAGE = 1000
DEFAULT_PAGE = 100


class KvError(ValueError):
    """A name, value or condition the store does not take; the message says which and why (safe to show)."""

    def __init__(self, message: str, location: str = "", code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.location = location
        self.code = code


class ValueTooLarge(KvError):
    pass


def check_namespace(namespace: Any) -> str:
    if not isinstance(namespace, str) or not NAMESPACE_RE.fullmatch(namespace):
        raise KvError("a namespace is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
                      "namespace")
    return namespace


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise KvError("a key is 1 to 255 letters, digits or _ . : @ = + ~ -, starting with a letter, digit or '_' "
                      "(no '/' or spaces)", "key")
    return key


def check_prefix(prefix: Any) -> str:
    if prefix is None or prefix == "":
        return ""
    if not isinstance(prefix, str) or len(prefix) > MAX_PREFIX or "/" in prefix or not prefix.isprintable():
        raise KvError(f"a prefix is at most {MAX_PREFIX} printable characters, no '/'", "prefix")
    return prefix


def encode_value(value: Any) -> str:
    """The value as compact JSON text, within MAX_VALUE_BYTES."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        raise KvError("the value must be JSON (no NaN or Infinity)", "value") from None
    size = len(text.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise ValueTooLarge(f"the value is {size:,} bytes as JSON; at most {MAX_VALUE_BYTES:,} are stored", "value",
                            "too_large")
    return text


def check_ttl(ttl_seconds: Any) -> int | None:
    if ttl_seconds is None:
        return None
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise KvError(f"ttl_seconds must be a whole number from 1 to {MAX_TTL_SECONDS:,} (366 days)", "ttl_seconds")
    return ttl_seconds


def expires_at(now_epoch: float, ttl_seconds: int | None) -> int | None:
    """Epoch seconds (DynamoDB's TTL unit), rounded up: an entry never expires before its TTL has passed."""
    return None if ttl_seconds is None else math.ceil(now_epoch + ttl_seconds)


def is_live(expires: Any, now_epoch: float) -> bool:
    """Whether an entry with this expires_at is still there; DynamoDB deletes expired ones late or never."""
    return expires is None or float(expires) > now_epoch


def partition(tenant: str | None, namespace: str) -> str:
    """The partition key: every tenant's namespace apart, and the tenant-less (shared) space apart from any
    tenant's ("-" marks it; a tenant is prefixed with "=")."""
    return f"{namespace}|" + ("-" if tenant is None else "=" + tenant)


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(raw: str | None) -> int | str | None:
    """The version an If-Match header names ("*": any current entry), None without the header."""
    if raw is None:
        return None
    text = raw.strip()
    if text == "*":
        return "*"
    if text.startswith("W/"):
        raise KvError("If-Match takes a strong ETag such as \"3\" (weak ETags never match a write)", "If-Match")
    bare = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text
    if not bare.isdigit() or len(bare) > 18 or int(bare) < 1:
        raise KvError("If-Match takes one ETag as GET returned it, e.g. \"3\" (or *)", "If-Match")
    return int(bare)


def parse_if_none_match(raw: str | None) -> bool:
    """True for `If-None-Match: *` (create only); other values are refused (a write has no weak form)."""
    if raw is None:
        return False
    if raw.strip() != "*":
        raise KvError("on a write, If-None-Match takes only * (create the key only if it does not exist)",
                      "If-None-Match")
    return True
