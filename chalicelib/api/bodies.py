"""Request bodies of the task and event routes (pydantic models, imported by a view when it reads a body)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, Field

from chalicelib.service.requests import _Body


class SendEvent(_Body):
    step: str | None = Field(None, min_length=1, max_length=80)
    event_type: str | None = Field(None, min_length=1, max_length=128)
    data: dict[str, Any] = Field(default_factory=dict)
    sent_by: str | None = Field(None, min_length=1, max_length=255)


class CompleteTask(_Body):
    """completed_by is required while authentication is off; with it on it comes from the token."""

    output_data: dict[str, Any]
    completed_by: str | None = Field(None, min_length=1, max_length=255)
    comment: str | None = Field(None, max_length=2000)


class ReassignTask(_Body):
    """Delegates the task to a person (new_assignee), a group (new_group), or both."""

    new_assignee: str | None = Field(None, min_length=1, max_length=255)
    new_group: str | None = Field(None, min_length=1, max_length=255)
    reason: str | None = Field(None, max_length=1000)
    reassigned_by: str | None = Field(None, max_length=255)


class OutOfOffice(_Body):
    """Tasks opened for the user from starts_at (default now) until `until` (default: until deleted) go to
    the delegate."""

    delegate: str = Field(min_length=1, max_length=255)
    starts_at: AwareDatetime | None = None
    until: AwareDatetime | None = None
    reason: str | None = Field(None, max_length=1000)


class ClaimTask(_Body):
    """user is required while authentication is off; with it on it comes from the token."""

    user: str | None = Field(None, min_length=1, max_length=255)


class Decision(_Body):
    """decided_by is required while authentication is off; with it on it comes from the token."""

    decided_by: str | None = Field(None, min_length=1, max_length=255)
    comment: str | None = Field(None, max_length=2000)


class MintLinks(_Body):
    """decider: whose decision the links carry (default: the task's assignee)."""

    decider: str | None = Field(None, min_length=1, max_length=255)
    expires_in: int | None = Field(None, ge=60, le=30 * 24 * 3600, description="Seconds (default 3 days)")
