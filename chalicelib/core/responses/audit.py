"""What GET /audit answers: audit records (core/audit.py builds them) and their pages."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chalicelib.core.responses.common import Closed, Cursor, Timestamp


class AuditSummary(Closed):
    """The body, without its data: allowlisted plain values, and the names of every other field."""

    values: dict[str, Any] = Field(default_factory=dict)
    fields: list[str] = Field(default_factory=list)
    body: str | None = None


class AuditRecord(Closed):
    id: str
    at: Timestamp
    tenant_id: str | None
    actor: str = Field(description="The token's subject; `anonymous` with authentication off; `public` on by-key routes")
    authenticated: bool
    operation: str = Field(description="The operationId of the OpenAPI document")
    method: Literal["POST", "PUT", "PATCH", "DELETE"]
    route: str
    target: str = Field(description="The resource: the route up to its last path parameter, filled in")
    summary: dict[str, Any]
    reason: str | None
    request_id: str
    source_ip: str | None
    status: int
    outcome: Literal["ok", "refused", "failed"]


class AuditPage(Closed):
    items: list[AuditRecord]
    limit: int
    next_cursor: Cursor
