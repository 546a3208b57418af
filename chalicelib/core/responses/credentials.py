"""Credentials as the API shows them: metadata only; a value is written, never answered."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chalicelib.core.responses.common import Closed, Cursor, Timestamp


class Credential(Closed):
    """A credential's metadata (its value is write-only)."""

    name: str
    description: str
    created_at: Timestamp | None
    created_by: str | None = Field(description="Who created it (null with authentication off)")
    rotated_at: Timestamp | None = Field(description="When its value was last set")


class CredentialPage(Closed):
    items: list[Credential]
    next_cursor: Cursor


class CredentialDeleted(Closed):
    name: str
    deleted: Literal[True]
