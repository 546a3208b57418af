"""Routes for webhook triggers: manage a workflow's triggers (editors), and POST /hooks/{key}, which needs
no token: the key in the path and the signature over the body are the credential (api/auth.py BY_KEY)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint

from chalicelib.api.auth import definition_key, definition_scope, may_change, principal
from chalicelib.api.http import (
    MAX_BODY_BYTES,
    BadRequest,
    TooLarge,
    error_response,
    handles_errors,
    json_response,
    query,
    read_body,
    stage_root,
)

MAX_IDEMPOTENCY_KEY = 255


def create_blueprint(services: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)

    def scope() -> Any:
        return definition_scope(query(bp.current_request))

    def key_of(name: str) -> str:
        """The key of the caller's definition of this name: another tenant's is not found, as none is."""
        return definition_key(services(), name, query(bp.current_request))

    def changeable(name: str) -> str:
        return definition_key(services(), name, query(bp.current_request), change=True)

    def optional_body() -> Any:
        raw = bp.current_request.raw_body
        return read_body(bp.current_request) if raw and raw.strip() else None

    @bp.route("/definitions/{name}/triggers", methods=["POST"])
    @handles_errors
    def create_trigger(name: str) -> Any:
        """Creates a webhook trigger; its key, URL and signing secret are in this answer only."""
        found = services()
        body = optional_body()
        definition = may_change(found, name, scope())
        who = principal()
        created = found.triggers.create(definition, body, who.id if who.authenticated else None)
        # The service knows the API prefix; the stage (or a custom domain's base path) is this request's.
        return json_response({**created, "url": stage_root(bp.current_request) + created["url"]}, 201)

    @bp.route("/definitions/{name}/triggers", methods=["GET"])
    @handles_errors
    def list_triggers(name: str) -> Any:
        """The workflow's triggers (metadata only), oldest first."""
        return json_response(services().triggers.list(key_of(name)))

    @bp.route("/definitions/{name}/triggers/{trigger_id}", methods=["GET"])
    @handles_errors
    def get_trigger(name: str, trigger_id: str) -> Any:
        """One trigger (metadata only)."""
        return json_response(services().triggers.get(key_of(name), trigger_id))

    @bp.route("/definitions/{name}/triggers/{trigger_id}/disable", methods=["POST"])
    @handles_errors
    def disable_trigger(name: str, trigger_id: str) -> Any:
        """Disables a trigger: its hook answers 404 until it is enabled again."""
        return json_response(services().triggers.set_enabled(changeable(name), trigger_id, False))

    @bp.route("/definitions/{name}/triggers/{trigger_id}/enable", methods=["POST"])
    @handles_errors
    def enable_trigger(name: str, trigger_id: str) -> Any:
        """Enables a disabled trigger."""
        return json_response(services().triggers.set_enabled(changeable(name), trigger_id, True))

    @bp.route("/definitions/{name}/triggers/{trigger_id}/rotate", methods=["POST"])
    @handles_errors
    def rotate_trigger(name: str, trigger_id: str) -> Any:
        """A new signing secret, in this answer only; the old one is honoured for overlap_seconds."""
        body = optional_body()
        return json_response(services().triggers.rotate(changeable(name), trigger_id, body))

    @bp.route("/definitions/{name}/triggers/{trigger_id}", methods=["DELETE"])
    @handles_errors
    def delete_trigger(name: str, trigger_id: str) -> Any:
        """Deletes a trigger: its hook answers 404 from now on."""
        return json_response(services().triggers.delete(changeable(name), trigger_id))

    @bp.route("/hooks/{key}", methods=["POST"])
    @handles_errors
    def fire_hook(key: str) -> Any:
        """Starts an instance of the trigger's workflow with the signed body (no token: the key and signature)."""
        from chalicelib.core.hooks import RateLimited, SignatureRefused

        request = bp.current_request
        raw = request.raw_body or b""
        if len(raw) > MAX_BODY_BYTES:
            raise TooLarge(f"the body is {len(raw):,} bytes; at most {MAX_BODY_BYTES:,} are accepted")
        idempotency_key = request.headers.get("idempotency-key")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise BadRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        try:
            started, created = services().triggers.fire(key, dict(request.headers), raw, idempotency_key)
        except SignatureRefused as exc:
            return error_response(401, exc.detail)
        except RateLimited as exc:
            response = error_response(429, exc.detail)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        return json_response(started, 201 if created else 200)

    return bp
