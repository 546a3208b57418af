"""Request bodies of the task and event routes (pydantic models, imported by a view when it reads a body)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, Field, field_validator, model_validator

from chalicelib.core.model import EVENT_TYPE_PATTERN
from chalicelib.service.requests import _Body

EventType = Annotated[str, Field(min_length=1, max_length=128, pattern=EVENT_TYPE_PATTERN)]
EventId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]


class SentEvent(_Body):
    """An event as a workflow-server client serialises it: its type and its value (what it streams back,
    `types` and `__is_pydantic` included, is read as it is; only the type and the value count)."""

    type: EventType | None = None
    qualified_name: EventType | None = None
    value: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    types: list[Annotated[str, Field(max_length=256)]] | None = Field(None, max_length=20)
    is_pydantic: bool | None = Field(None, alias="__is_pydantic")


class SendEvent(_Body):
    """`type` (or `event_type`) and `data`; or the `{event, step}` form, where `event` is the type's name or
    an object with `type` (or `qualified_name`) and `value` (or `data`)."""

    step: str | None = Field(None, min_length=1, max_length=80)
    type: EventType | None = None
    event_type: EventType | None = None
    event: EventType | SentEvent | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    id: EventId | None = None
    ttl_seconds: int | None = Field(None, ge=1)
    sent_by: str | None = Field(None, min_length=1, max_length=255)

    @field_validator("step", mode="before")
    @classmethod
    def _no_step(cls, value: Any) -> Any:
        # The {event, step} form sends "" for "no particular step".
        return None if value == "" else value

    @model_validator(mode="after")
    def _one_type(self) -> SendEvent:
        named = {n for n in (self.type, self.event_type) if n}
        if isinstance(self.event, str):
            named.add(self.event)
        elif self.event is not None:
            named |= {n for n in (self.event.type, self.event.qualified_name) if n}
            carried = self.event.value if self.event.value is not None else self.event.data
            if carried is not None:
                if self.data and self.data != carried:
                    raise ValueError("the event's value and data differ; send one of them")
                self.data = carried
        if len(named) > 1:
            raise ValueError(f"the event names more than one type ({', '.join(sorted(named))}); send one")
        self.event_type = next(iter(named), None)
        return self


class PublishEvent(_Body):
    """POST /events: to whichever instance of the tenant waits for the type with this correlation key."""

    type: EventType
    correlation_key: str | None = Field(None, min_length=1, max_length=256)
    data: dict[str, Any] = Field(default_factory=dict)
    id: EventId | None = None
    ttl_seconds: int | None = Field(None, ge=1)
    keep: bool = True
    tenant_id: str | None = Field(None, min_length=1, max_length=100)
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
