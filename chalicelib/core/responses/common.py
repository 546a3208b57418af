"""What every answer shares: the conventions (required, nullable, absent), statuses, errors, health."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

# May be missing from the object, but is never null when there.
Absent = SkipJsonSchema[None]
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]  # UTC, ms, with a Z
JsonObject = dict[str, Any]


# The statuses, spelled out for readers of this file; tests pin them to the constants the code uses.
class InstanceStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


class TaskStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELED = "canceled"


class StepStatus(StrEnum):
    """A step in an instance's history (`timed_out`: not completed within its timeout)."""

    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"


class StepType(StrEnum):
    MACHINE = "machine"
    HUMAN = "human"
    GATEWAY = "gateway"
    TIMER = "timer"
    WEBHOOK = "webhook"
    RECEIVE = "receive"


class NodeState(StrEnum):
    """How an instance graph draws a step."""

    COMPLETED = "completed"
    CURRENT = "current"
    WAITING = "waiting"
    FAILED = "failed"
    CANCELED = "canceled"
    NOT_REACHED = "not_reached"


EndedStatus = Literal["completed", "failed", "canceled"]
LiveStatus = Literal["pending", "running", "waiting"]
Cursor = Annotated[str | None, Field(description="Opaque; pass it back as `cursor` for the next page (null: the end)")]


class Closed(BaseModel):
    """A shape the service builds whole: every field it sends is named here."""

    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """A shape that may carry more than is named here (stored attributes, projections that grow)."""

    model_config = ConfigDict(extra="allow")


class Health(Closed):
    status: Literal["healthy"]
    stage: str


class Liveness(Closed):
    status: Literal["alive"]


class Readiness(Closed):
    """Each dependency's verdict; `failing` names those that are not `ok`."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, Literal["ok", "unreachable", "timed_out"]]
    failing: list[str]
    elapsed_ms: float


class Failure(Closed):
    """Why an instance or a step failed: the error name Step Functions matched on, and the message."""

    error: str | None
    message: str | None


class OpenApiDocument(Open):
    openapi: str
    info: JsonObject
    paths: JsonObject
