"""Webhook triggers: create one (its key and signing secret shown once), list, enable/disable, rotate,
delete; and fire one: a signed delivery to POST /hooks/{key} starts an instance through
InstanceService.start, so tenancy, pins and idempotency hold as for POST /instances.

Order of the checks on a delivery, and why: the key (unknown, disabled or deleted: one 404 that reveals
nothing), the signature and its timestamp window (401), the rate limit (429: only signed deliveries
spend the trigger's budget), then the replay check (401), then the start. A delivery is recorded as
seen (`open`) before the start and marked `done` after it; the instance it starts is named by the
delivery (or its Idempotency-Key), so an attempt cut short after the start is finished by the sender's
retry of the same delivery, which finds the same instance instead of a replay refusal.
"""

from __future__ import annotations

import builtins
import json
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.core import definition_keys, hooks
from chalicelib.core.times import iso
from chalicelib.errors import InvalidInput, NotFound, Unreadable
from chalicelib.service.requests import StartInstance, _Body, parse_body

DEFAULT_RATE_PER_MINUTE = 60
MAX_TRIGGERS_PER_WORKFLOW = 20
DEFAULT_OVERLAP_SECONDS = 900  # a rotated secret is honoured this long, so senders can switch over
MAX_KEY_CHARS = 100
VIEW_FIELDS = ("id", "definition_name", "description", "enabled", "rate_limit_per_minute", "revision", "alias",
               "forward_headers", "created_at", "created_by", "rotated_at", "previous_secret_valid_until",
               "last_fired_at", "last_instance_id")
NO_HOOK = "no such hook"


class CreateTrigger(_Body):
    description: str | None = Field(None, max_length=500)
    revision: int | str | None = Field(None, description="Start this revision (its number or content id)")
    alias: str | None = Field(None, min_length=1, max_length=80, description="Start what this alias routes to")
    rate_limit_per_minute: int = Field(DEFAULT_RATE_PER_MINUTE, ge=1, le=6000)
    forward_headers: list[str] = Field(default_factory=list, max_length=20,
                                       description="Request headers (besides content-type and user-agent) "
                                                   "the instance's input carries")


class RotateTrigger(_Body):
    overlap_seconds: int = Field(DEFAULT_OVERLAP_SECONDS, ge=0, le=86400,
                                 description="How long the secret being replaced is still honoured")


def view(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a read shows: metadata only, never the key, its hash, the nonces or a secret."""
    shown = {f: record.get(f) for f in VIEW_FIELDS}
    shown["definition_name"] = record.get("workflow_name") or record.get("definition_name")
    shown["forward_headers"] = list(record.get("forward_headers") or [])
    return shown


class TriggerService:
    def __init__(self, store: Any, definitions: Any, aliases: Any, instances: Any, derivation_key: bytes,
                 now: Callable[[], datetime], api_prefix: str, clock: Callable[[], float] = time.time):
        self._store = store
        self._definitions = definitions
        self._aliases = aliases
        self._instances = instances
        self._derivation_key = derivation_key
        self._now = now
        self._clock = clock
        self._prefix = api_prefix.rstrip("/")

    # -- management (the API has checked the caller may change `definition`) -------------------------
    def create(self, definition: dict[str, Any], body: Any, created_by: str | None) -> dict[str, Any]:
        request: CreateTrigger = parse_body(CreateTrigger, {} if body is None else body)
        name = definition.get("key") or definition["name"]  # the tenant's own definition of the name
        issues = [{"code": "not_allowed", "location": f"forward_headers.{i}", "message": problem}
                  for i, h in enumerate(request.forward_headers) if (problem := hooks.header_name_issue(h))]
        if request.revision is not None and request.alias is not None:
            issues.append({"code": "not_allowed", "location": "alias", "message": "pin a revision or an alias, not both"})
        if issues:
            raise InvalidInput({"message": "the request body is not valid", "issues": issues})
        # An unknown pin is refused now (404), not at the first delivery.
        if request.revision is not None:
            self._definitions.get(name, revision=str(request.revision))
        if request.alias is not None:
            self._aliases.get(name, request.alias)
        if len(self._store.list(name)) >= MAX_TRIGGERS_PER_WORKFLOW:
            raise InvalidInput({"message": f"a workflow has at most {MAX_TRIGGERS_PER_WORKFLOW} triggers", "issues": []})
        key = hooks.KEY_PREFIX + secrets.token_urlsafe(32)
        trigger_id = "trg-" + secrets.token_hex(8)
        nonce = secrets.token_hex(16)
        record = {
            # Stored under the definition's key (per tenant and namespace); shown by its name.
            "id": trigger_id, "definition_name": name, "workflow_name": definition["name"],
            "namespace": definition.get("namespace"), "tenant_id": definition.get("tenant_id"),
            "description": request.description, "enabled": True, "rate_limit_per_minute": request.rate_limit_per_minute,
            "revision": None if request.revision is None else str(request.revision), "alias": request.alias,
            "forward_headers": sorted({h.lower() for h in request.forward_headers}),
            "created_at": iso(self._now()), "created_by": created_by,
            "key_hash": hooks.key_hash(key), "nonce": nonce,
        }
        self._store.create(record)
        return {**view(record), "key": key, "url": f"{self._prefix}/hooks/{key}",
                "secret": hooks.secret_text(hooks.signing_key(self._derivation_key, trigger_id, nonce))}

    def list(self, name: str) -> builtins.list[dict[str, Any]]:
        return sorted((view(r) for r in self._store.list(name)), key=lambda v: (v["created_at"] or "", v["id"]))

    def get(self, name: str, trigger_id: str) -> dict[str, Any]:
        return view(self._record(name, trigger_id))

    def set_enabled(self, name: str, trigger_id: str, enabled: bool) -> dict[str, Any]:
        record = self._record(name, trigger_id)
        self._update(name, trigger_id, {"enabled": enabled})
        return view({**record, "enabled": enabled})

    def rotate(self, name: str, trigger_id: str, body: Any) -> dict[str, Any]:
        """A new signing secret (shown once); the one it replaces is honoured for `overlap_seconds`."""
        request: RotateTrigger = parse_body(RotateTrigger, {} if body is None else body)
        record = self._record(name, trigger_id)
        now = self._now()
        nonce = secrets.token_hex(16)
        until = iso(now + timedelta(seconds=request.overlap_seconds)) if request.overlap_seconds else None
        changes = {"nonce": nonce, "previous_nonce": record["nonce"] if until else None,
                   "previous_secret_valid_until": until, "rotated_at": iso(now)}
        # Against the nonce read: of two rotations at once, one wins and the other is told to try again.
        try:
            self._store.update(name, trigger_id, changes, expect={"nonce": record["nonce"]})
        except TransitionRefused:
            raise NotFound(f"no trigger '{trigger_id}' (or it was just rotated; read it again)") from None
        return {**view({**record, **changes}),
                "secret": hooks.secret_text(hooks.signing_key(self._derivation_key, trigger_id, nonce))}

    def delete(self, name: str, trigger_id: str) -> dict[str, Any]:
        self._store.delete(self._record(name, trigger_id))
        return {"id": trigger_id, "deleted": True}

    def delete_all(self, name: str) -> int:
        """Every trigger of the workflow, its key with it (a purge of the definition); how many."""
        records = self._store.list(name)
        for record in records:
            self._store.delete(record)
        return len(records)

    def _record(self, name: str, trigger_id: str) -> dict[str, Any]:
        record = self._store.get(name, trigger_id) if 0 < len(trigger_id) <= 40 else None
        if record is None:
            raise NotFound(f"no trigger '{trigger_id}' on workflow '{definition_keys.name_of(name)}'")
        return record

    def _update(self, name: str, trigger_id: str, changes: dict[str, Any]) -> None:
        try:
            self._store.update(name, trigger_id, changes)
        except TransitionRefused:
            raise NotFound(f"no trigger '{trigger_id}' on workflow '{definition_keys.name_of(name)}'") from None

    # -- deliveries ------------------------------------------------------------------------------------
    def fire(self, key: str, headers: Mapping[str, str], body: bytes,
             idempotency_key: str | None) -> tuple[dict[str, Any], bool]:
        """The started instance's summary and whether it was created now (False: an idempotent repeat)."""
        record = self._store.by_key_hash(hooks.key_hash(key)) if 0 < len(key) <= MAX_KEY_CHARS else None
        if record is None or not record.get("enabled"):
            raise NotFound(NO_HOOK)
        now = self._clock()
        delivery = hooks.verify(headers, body, self._keys(record, now), now)
        window, retry_after = hooks.rate_window(now)
        expires = int(now) + 2 * hooks.RATE_WINDOW_SECONDS
        if self._store.count(record["id"], window, expires) > record["rate_limit_per_minute"]:
            raise hooks.RateLimited(f"over this hook's limit of {record['rate_limit_per_minute']} deliveries a minute",
                                    retry_after)
        data = _json(body)
        # Seen until its timestamp could no longer pass the window: a replay after that fails the timestamp.
        seen = self._store.claim_delivery(record["id"], delivery.replay_id, int(now),
                                          delivery.timestamp + 2 * hooks.TOLERANCE_SECONDS)
        if seen is not None and seen.get("state") == "done":
            raise hooks.SignatureRefused("this delivery was received already (a replay)")
        definition = self._definitions.get(record["definition_name"])
        if definition.get("tenant_id") != record.get("tenant_id"):
            raise NotFound(NO_HOOK)  # the workflow was removed and its name is another tenant's now
        request = StartInstance(
            definition_name=definition["name"], namespace=definition.get("namespace"), tenant_id=record.get("tenant_id"),
            user_id=f"trigger:{record['id']}",
            input_data={"body": data, "headers": hooks.forwarded_headers(headers, record.get("forward_headers") or [])},
            revision=record.get("revision"), alias=record.get("alias"))
        # Named by the sender's Idempotency-Key, else by the delivery: a retry finds the same instance.
        name = f"idempotency/{idempotency_key}" if idempotency_key else f"delivery/{delivery.replay_id}"
        instance, created = self._instances.start(request, f"trigger/{record['id']}/{name}", definition=definition)
        self._store.delivery_done(record["id"], delivery.replay_id, instance["id"])
        try:
            self._store.update(record["definition_name"], record["id"],
                               {"last_fired_at": iso(self._now()), "last_instance_id": instance["id"]})
        except TransitionRefused:
            pass  # deleted meanwhile: the instance stands, there is nothing to record it on
        return {"instance_id": instance["id"], "definition_name": instance["definition_name"],
                "status": instance["status"], "trigger_id": record["id"], "created": created}, created

    def _keys(self, record: Mapping[str, Any], now: float) -> builtins.list[bytes]:
        keys = [hooks.signing_key(self._derivation_key, record["id"], record["nonce"])]
        until = record.get("previous_secret_valid_until")
        if record.get("previous_nonce") and until and until > iso(datetime.fromtimestamp(now, UTC)):
            keys.append(hooks.signing_key(self._derivation_key, record["id"], record["previous_nonce"]))
        return keys


def _json(body: bytes) -> Any:
    """The delivery's body as JSON (an empty body is null)."""
    from chalicelib.core.bounds import TooDeep, check_json_text

    if not body.strip():
        return None
    try:
        text = body.decode("utf-8")
        check_json_text(text)
        return json.loads(text)
    except (UnicodeDecodeError, ValueError, TooDeep):
        raise Unreadable("the body is not JSON (UTF-8)") from None
