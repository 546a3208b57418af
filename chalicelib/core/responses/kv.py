"""The key-value store's answers: an entry, a page of keys, a deletion."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib.core.responses.common import Absent, Closed, Cursor, Timestamp


class KvEntry(Closed):
    """An entry; its version is also the response's ETag header ("<version>")."""

    namespace: str
    key: str
    value: Any = Field(description="The stored JSON value (any JSON, null included)")
    version: int = Field(ge=1, description="Counted up by each write; send it back as If-Match: \"<version>\"")
    updated_at: Timestamp
    expires_at: Timestamp | Absent = Field(default=None, description="When it expires (absent: never)")


class KvKey(Closed):
    key: str
    version: int = Field(ge=1)
    updated_at: Timestamp
    expires_at: Timestamp | Absent = None


class KvPage(Closed):
    """Keys in key order; a page may hold fewer than `limit` when expired entries were passed over."""

    items: list[KvKey]
    limit: int
    next_cursor: Cursor


class KvDeleted(Closed):
    namespace: str
    key: str
    deleted: bool
    version: int = Field(ge=1, description="The version that was deleted")
