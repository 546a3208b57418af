"""What the webhook trigger operations answer: trigger metadata, the one-time key and secret, hook answers."""

from __future__ import annotations

from pydantic import Field

from chalicelib.core.responses.common import Closed, InstanceStatus, Timestamp


class Trigger(Closed):
    """A webhook trigger as every read shows it: metadata only, never its key or signing secret."""

    id: str
    definition_name: str
    description: str | None
    enabled: bool = Field(description="False: its hook answers 404 until it is enabled again")
    rate_limit_per_minute: int
    revision: str | None = Field(description="The revision its deliveries start (number or content id), if pinned")
    alias: str | None = Field(description="The alias whose routes its deliveries start, if pinned")
    forward_headers: list[str] = Field(description="Headers the input carries besides content-type and user-agent")
    created_at: Timestamp
    created_by: str | None
    rotated_at: Timestamp | None
    previous_secret_valid_until: Timestamp | None = Field(
        description="Until then the secret the last rotation replaced is still honoured")
    last_fired_at: Timestamp | None
    last_instance_id: str | None


class TriggerCreated(Trigger):
    """A new trigger, with what is shown this once: the key (in the URL) and the signing secret."""

    key: str = Field(description="The hook's key: POST {prefix}/hooks/{key}. Shown only in this answer")
    url: str = Field(description="The hook's path under the API's base URL")
    secret: str = Field(description="The signing secret (whsec_ + base64 of the HMAC key). Shown only in this answer")


class TriggerRotated(Trigger):
    """A trigger with its new signing secret, shown this once."""

    secret: str = Field(description="The new signing secret. Shown only in this answer")


class TriggerRemoved(Closed):
    id: str
    deleted: bool


class HookAccepted(Closed):
    """What a delivery started (or, for an idempotent repeat, had started)."""

    instance_id: str
    definition_name: str
    status: InstanceStatus
    trigger_id: str
    created: bool = Field(description="False: an idempotent repeat (the same Idempotency-Key or delivery)")
