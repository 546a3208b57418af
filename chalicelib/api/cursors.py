"""Page cursors at the HTTP edge: sealed for the caller's tenant and query, opened only by them (400 else)."""

from __future__ import annotations

from typing import Any

from chalicelib.api.auth import principal
from chalicelib.api.http import BadRequest
from chalicelib.core import cursors


def _tenant() -> str | None:
    caller = principal()
    return caller.tenant_id if caller.authenticated else None


def open_cursor(services: Any, cursor: str | None, query: dict[str, Any]) -> Any:
    """Where the page starts: the position a cursor this caller was given for this query holds."""
    try:
        return cursors.decode(services.settings.cursor_key, cursor, tenant=_tenant(), query=query)
    except cursors.CursorError as exc:
        raise BadRequest(str(exc)) from None


def seal(services: Any, page: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
    """The page with its raw continuation key replaced by an opaque cursor (None at the end)."""
    position = page.get("next_cursor")
    return {**page, "next_cursor": cursors.encode(services.settings.cursor_key, position, tenant=_tenant(),
                                                   query=query)}
