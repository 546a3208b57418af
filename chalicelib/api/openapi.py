"""The API's OpenAPI 3.1 contract, generated from the route table (app.routes) and the pydantic request
and response models, served at /openapi.json with a self-contained docs page at /docs (no scripts, no CDN).

Every route the app serves is in the document (a test holds it to that); request bodies and every
JSON success come from the models' JSON Schemas (components, by reference; the answers' models are in
core/responses/), errors share the {"detail": ...} schema, the guards table (api/auth.py) gives each
operation its security and minimum role. STEPFLOW_OPENAPI_INCLUDE_WORKFLOWS=false leaves
the workflow routes (everything under the API prefix) out of the document.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Response

from chalicelib.api import auth, error_responses
from chalicelib.api.http import json_response
from chalicelib.core import event_stream as es

ERROR_CODES = {"400": "The request cannot be read (malformed body, parameter or header, or listing filters no index serves)",
               "401": "Authentication required or the token is not valid",
               "403": "The token's role or tenant does not allow this",
               "404": "No such route, or not found (also for another tenant's resources)",
               "409": "Conflicts with the current state",
               "410": "Gone: the task expired or was canceled",
               "413": "The body is over 256 KiB",
               "415": "Unsupported Content-Type (a body without one is read as JSON)",
               "422": "The body is well-formed but not valid: wrong types, missing or unknown fields (every issue listed)",
               "502": "An AWS service failed",
               "503": "Authentication is not configured on this stage"}
TAGS = [
    {"name": "definitions", "description": "Workflow definitions: register, validate, read, compiled ASL, run"},
    {"name": "instances", "description": "Workflow instances: start, list, read, control, results"},
    {"name": "events", "description": "Instance event logs, events into running instances, webhook callbacks"},
    {"name": "tasks", "description": "Human tasks (the inbox) and approval gates"},
    {"name": "graphs", "description": "Mermaid graphs of definitions and instances"},
    {"name": "plugins", "description": "The task-type catalog"},
    {"name": "triggers", "description": "Webhook triggers: signed deliveries that start instances"},
    {"name": "credentials", "description": "The tenant's secrets for steps (metadata only; values are write-only)"},
    {"name": "kv", "description": "The key-value store: each tenant's namespaces of versioned JSON entries"},
    {"name": "audit", "description": "The audit log: every mutating request, append-only (admins of the tenant)"},
    {"name": "service", "description": "Health, the web UI and this contract"},
]


def _text(max_length: int = 255, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, **extra}


BOOL = {"type": "boolean"}

def _query_params() -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    from chalicelib.service.instances import MAX_PAGE  # the service layer loads with the spec, not the app

    limit = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 20}
    revision = _text(64, description="A revision number (1, 2, ...) or content id; unknown: 404")
    namespace = _text(80, pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,79}$",
                      description="Names are unique per tenant and namespace; none by default")
    # The tenant is the token's; with authentication off, `tenant_id` acts for one (none by default).
    scope = {"namespace": namespace, "tenant_id": _text(100)}
    kv_tenant = _text(100, description="With authentication off: the tenant whose store is used; with it on, "
                                       "the token's (another tenant: 403)")
    audit_filters = {"actor": _text(1024), "target": _text(1024, description="e.g. instances/<id>, definitions/<name>"),
                     "operation": _text(1024, description="The operationId, e.g. cancel_instance"),
                     "since": {"type": "string", "format": "date-time"},
                     "until": {"type": "string", "format": "date-time"},
                     "tenant_id": _text(100, description="With authentication off: whose log; with it on, the "
                                                         "token's (another tenant: 403)")}
    return {
        ("GET", "/definitions"): {"include_inactive": BOOL, **scope, "include_adhoc": {
            **BOOL, "description": "true: the anonymous definitions inline starts registered too"}},
        ("POST", "/definitions"): scope,
        ("PUT", "/definitions/{name}"): scope,
        ("GET", "/definitions/{name}"): {"version": _text(64), "revision": revision, **scope},
        ("GET", "/definitions/{name}/asl"): {"version": _text(64), "revision": revision, **scope},
        ("GET", "/definitions/{name}/graph"): {"version": _text(64), "revision": revision, **scope,
                                              "graph_format": {"type": "string", "enum": ["mermaid", "json"]}},
        ("DELETE", "/definitions/{name}"): {"purge": BOOL, **scope},
        ("GET", "/definitions/{name}/revisions"): scope,
        ("GET", "/definitions/{name}/revisions/{rev}"): scope,
        ("GET", "/definitions/{name}/revisions/{rev}/diff"): {"to": revision, **scope},
        ("POST", "/definitions/{name}/revisions/{rev}/restore"): scope,
        ("GET", "/plugins"): {"category": _text(64, description="Only this category's task types; an unknown one "
                                                                "is a 400 listing the categories")},
        ("GET", "/definitions/{name}/export"): {"format": {"type": "string", "enum": ["json", "yaml"]},
                                               "history": BOOL, "revision": revision, **scope},
        ("GET", "/definitions/{name}/aliases"): scope,
        ("GET", "/definitions/{name}/aliases/{alias}"): scope,
        ("PUT", "/definitions/{name}/aliases/{alias}"): scope,
        ("POST", "/definitions/import"): scope,
        ("POST", "/definitions/{name}/run"): {"namespace": namespace},
        ("POST", "/instances"): {"start": {**BOOL, "description": "false: create the instance pending; "
                                                                 "POST /instances/{instance_id}/start starts it"},
                                 "namespace": namespace},
        ("GET", "/instances"): {
            "status": {"$ref": "#/components/schemas/InstanceStatus"},
            "workflow_name": _text(80), "tenant_id": _text(100), "correlation_id": _text(), "created_by": _text(),
            "origin_instance": _text(100), "origin_tenant_id": _text(100),
            "started_after": {"type": "string", "format": "date-time"},
            "started_before": {"type": "string", "format": "date-time"},
            "include_deleted": BOOL, "limit": limit, "cursor": _text(2048),
            "offset": {"type": "integer", "minimum": 0, "maximum": 100, "deprecated": True,
                       "description": "at most `limit`; follow next_cursor instead"}},
        ("GET", "/instances/{instance_id}"): {"include_outputs": BOOL, "input_of": _text(
            64, description="A step id: its record in step_history gets `input`")},
        ("DELETE", "/instances/{instance_id}"): {"purge": BOOL},
        ("POST", "/instances/{instance_id}/cancel"): {"reason": _text(1000), "purge": {
            **BOOL, "description": "also remove the instance, its tasks and its events"}},
        ("GET", "/instances/{instance_id}/graph"): {"graph_format": {"type": "string", "enum": ["mermaid", "json"]}},
        ("GET", "/instances/{instance_id}/events"): {
            "sse": BOOL, "after": _text(64), "limit": {"type": "integer", "minimum": 1, "maximum": es.MAX_LIMIT},
            "wait": {"type": "number", "minimum": 0, "maximum": es.MAX_WAIT_SECONDS},
            "follow": {**BOOL, "description": "until the instance ends: one stream on the local server, a long poll "
                                              "(answered with events or after `wait`) behind API Gateway"}},
        ("GET", "/tasks"): {"status": {"$ref": "#/components/schemas/TaskStatus"},
                            "assignee_id": _text(), "assignee_group": _text(), "instance_id": _text(),
                            "overdue": BOOL, "limit": limit, "cursor": _text(2048), "tenant_id": _text(100),
                            "completed_by": _text()},
        ("GET", "/tasks/metrics"): {"tenant_id": _text(100)},
        ("GET", "/credentials"): {"limit": {"type": "integer", "minimum": 1, "maximum": 100},
                                  "cursor": _text(4096)},
        ("GET", "/kv/{namespace}"): {"prefix": _text(255), "limit": {"type": "integer", "minimum": 1,
                                                                     "maximum": 1000, "default": 100},
                                     "cursor": _text(2048), "tenant_id": kv_tenant},
        ("GET", "/kv/{namespace}/{key}"): {"tenant_id": kv_tenant},
        ("PUT", "/kv/{namespace}/{key}"): {"tenant_id": kv_tenant},
        ("DELETE", "/kv/{namespace}/{key}"): {"tenant_id": kv_tenant},
        ("GET", "/audit"): {**audit_filters, "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                            "cursor": _text(2048)},
        ("GET", "/audit/export"): audit_filters,
    }


HEADERS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("POST", "/instances"): {"Idempotency-Key": {"type": "string", "minLength": 1, "maxLength": 255}},
    ("POST", "/definitions/{name}/run"): {"Idempotency-Key": {"type": "string", "minLength": 1, "maxLength": 255}},
    ("POST", "/hooks/{key}"): {
        "Idempotency-Key": {"type": "string", "minLength": 1, "maxLength": 255},
        "X-Stepflow-Timestamp": {"type": "string", "description": "Unix seconds (the Stepflow scheme)"},
        "X-Stepflow-Signature": {"type": "string", "description": 'v1=<hex HMAC-SHA256(key, "<timestamp>.<body>")>'},
        "webhook-id": {"type": "string", "maxLength": 255, "description": "Standard Webhooks: the delivery's id"},
        "webhook-timestamp": {"type": "string", "description": "Standard Webhooks: Unix seconds"},
        "webhook-signature": {"type": "string",
                              "description": 'Standard Webhooks: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>'}},
    ("PUT", "/kv/{namespace}/{key}"): {
        "If-Match": {"type": "string", "maxLength": 40, "description": "\"<version>\" (the ETag) or *"},
        "If-None-Match": {"type": "string", "enum": ["*"], "description": "* creates only"}},
    ("DELETE", "/kv/{namespace}/{key}"): {
        "If-Match": {"type": "string", "maxLength": 40, "description": "\"<version>\" (the ETag) or *"}},
}
# Errors an operation answers besides ERROR_CODES.
MORE_ERRORS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/hooks/{key}"): {"401": "Not signed by the trigger's secret, a timestamp outside five minutes, or a replay",
                               "404": "No such hook (unknown, disabled or deleted: one answer)",
                               "429": "Over the trigger's rate limit (Retry-After says when to try again)"},
    ("PUT", "/kv/{namespace}/{key}"): {"412": "If-Match or If-None-Match does not hold (the entry changed)"},
    ("DELETE", "/kv/{namespace}/{key}"): {"412": "If-Match does not hold (the entry changed)"},
}
# Each JSON operation's success statuses: (description, the response model in core/responses/, or
# [name] for an array of them). A test holds every JSON route to having one.
SUCCESS: dict[tuple[str, str], dict[str, tuple[str, str | list[str]]]] = {
    ("GET", "/health"): {"200": ("The service answers", "Health")},
    ("GET", "/healthz"): {"200": ("The process answers (liveness; no I/O)", "Liveness")},
    ("GET", "/readyz"): {"200": ("Every dependency answered in time", "Readiness"),
                         "503": ("A dependency did not answer (named in `failing`)", "Readiness")},
    ("GET", "/openapi.json"): {"200": ("This document", "OpenApiDocument")},
    ("GET", "/definitions"): {"200": ("The latest revision of each workflow", ["DefinitionSummary"])},
    ("POST", "/definitions"): {"201": ("Registered", "DefinitionDetail"),
                               "200": ("Already registered (same revision)", "DefinitionDetail")},
    ("POST", "/definitions/validate"): {"200": ("The dry run's verdict", "ValidationResult")},
    ("GET", "/definitions/{name}"): {"200": ("The definition", "DefinitionDetail")},
    ("PUT", "/definitions/{name}"): {"201": ("A new revision", "DefinitionDetail"),
                                     "200": ("Unchanged (the same revision)", "DefinitionDetail")},
    ("DELETE", "/definitions/{name}"): {"200": ("Deactivated (or purged)", "DefinitionRemoved")},
    ("GET", "/definitions/{name}/revisions"): {"200": ("Newest first", ["RevisionEntry"])},
    ("GET", "/definitions/{name}/revisions/{rev}"): {"200": ("The revision", "RevisionDetail")},
    ("GET", "/definitions/{name}/revisions/{rev}/diff"): {"200": ("The differences", "RevisionDiff")},
    ("POST", "/definitions/{name}/revisions/{rev}/restore"): {
        "201": ("A new revision equal to it", "DefinitionDetail"),
        "200": ("It is the latest already", "DefinitionDetail")},
    ("GET", "/definitions/{name}/export"): {"200": ("The document (YAML with format=yaml)", "DefinitionExport")},
    ("GET", "/definitions/{name}/aliases"): {"200": ("`live` first, then by name", ["DefinitionAlias"])},
    ("GET", "/definitions/{name}/aliases/{alias}"): {"200": ("The alias", "DefinitionAlias")},
    ("PUT", "/definitions/{name}/aliases/{alias}"): {"200": ("Set", "DefinitionAlias")},
    ("GET", "/definitions/{name}/schedules"): {"200": ("Oldest first", ["Schedule"])},
    ("POST", "/definitions/{name}/schedules"): {"201": ("Created", "Schedule")},
    ("GET", "/definitions/{name}/schedules/{schedule_id}"): {"200": ("The schedule", "Schedule")},
    ("PUT", "/definitions/{name}/schedules/{schedule_id}"): {"200": ("Changed", "Schedule")},
    ("DELETE", "/definitions/{name}/schedules/{schedule_id}"): {"200": ("Deleted", "ScheduleRemoved")},
    ("POST", "/definitions/{name}/schedules/{schedule_id}/pause"): {"200": ("Paused", "Schedule")},
    ("POST", "/definitions/{name}/schedules/{schedule_id}/resume"): {"200": ("Enabled", "Schedule")},
    ("POST", "/definitions/{name}/schedules/{schedule_id}/backfill"): {"200": ("Each slot's outcome", "Backfill")},
    ("POST", "/definitions/import"): {"201": ("Imported", "DefinitionImported"),
                                      "200": ("Everything was there already", "DefinitionImported")},
    ("GET", "/definitions/{name}/asl"): {"200": ("The compiled state machine", "StateMachine")},
    ("GET", "/definitions/{name}/graph"): {"200": ("The graph", "DefinitionGraph")},
    ("POST", "/definitions/{name}/run"): {"200": ("Ended within wait_seconds", "InstanceResult"),
                                          "202": ("Still running", "InstanceRunning")},
    ("POST", "/instances"): {"201": ("Started (or created pending)", "Instance"),
                             "200": ("An idempotent repeat", "Instance")},
    ("GET", "/instances"): {"200": ("A page, newest first", "InstancePage")},
    ("GET", "/instances/{instance_id}"): {"200": ("The instance", "Instance")},
    ("DELETE", "/instances/{instance_id}"): {"200": ("Deleted (or purged)", "InstanceRemoved")},
    ("POST", "/instances/{instance_id}/start"): {"200": ("Started", "Instance")},
    ("POST", "/instances/{instance_id}/cancel"): {"200": ("Canceled", "Instance")},
    ("POST", "/instances/{instance_id}/retry"): {"201": ("The new instance", "Instance")},
    ("POST", "/instances/{instance_id}/resume"): {"200": ("Running again", "Instance")},
    ("POST", "/instances/{instance_id}/continue"): {"201": ("The new instance, continuing this one", "Instance")},
    ("GET", "/instances/{instance_id}/result"): {"200": ("Ended", "InstanceResult"),
                                                 "202": ("Still running", "InstanceRunning")},
    ("GET", "/instances/{instance_id}/history"): {"200": ("A page of the execution history", "ExecutionHistoryPage")},
    ("GET", "/instances/{instance_id}/graph"): {"200": ("The graph by execution state", "InstanceGraph")},
    ("POST", "/instances/{instance_id}/events"): {"202": ("Accepted", "EventAccepted")},
    ("POST", "/callbacks/{key}"): {"200": ("The step is done", "CallbackAccepted")},
    ("POST", "/events"): {"202": ("Delivered to a waiting receive step, kept for one, or a repeat", "EventPublished")},
    ("GET", "/plugins"): {"200": ("The catalog", ["PluginManifest"])},
    ("GET", "/plugins/{plugin_id}"): {"200": ("The task type", "PluginManifest")},
    ("GET", "/plugins/categories"): {"200": ("Each category with its number of task types", ["PluginCategory"])},
    ("GET", "/tasks"): {"200": ("A page, newest first", "TaskPage")},
    ("GET", "/tasks/metrics"): {"200": ("The counters", "TaskMetrics")},
    ("GET", "/tasks/{task_id}"): {"200": ("The task", "Task")},
    ("GET", "/tasks/{task_id}/callback"): {"200": ("The callback URL", "TaskCallback")},
    ("POST", "/tasks/{task_id}/complete"): {"200": ("Completed", "Task")},
    ("POST", "/tasks/{task_id}/reassign"): {"200": ("Reassigned", "Task")},
    ("POST", "/tasks/{task_id}/claim"): {"200": ("Claimed", "Task")},
    ("POST", "/tasks/{task_id}/unclaim"): {"200": ("Given back", "Task")},
    ("GET", "/approvals/{task_id}"): {"200": ("The approval task", "Task")},
    ("POST", "/approvals/{task_id}/approve"): {"200": ("Approved (the task, completed)", "Task")},
    ("POST", "/approvals/{task_id}/reject"): {"200": ("Rejected (the task, completed)", "Task")},
    ("POST", "/definitions/{name}/triggers"): {"201": ("Created: the key and secret, shown this once", "TriggerCreated")},
    ("GET", "/definitions/{name}/triggers"): {"200": ("Oldest first, metadata only", ["Trigger"])},
    ("GET", "/definitions/{name}/triggers/{trigger_id}"): {"200": ("The trigger (metadata only)", "Trigger")},
    ("POST", "/definitions/{name}/triggers/{trigger_id}/disable"): {"200": ("Disabled", "Trigger")},
    ("POST", "/definitions/{name}/triggers/{trigger_id}/enable"): {"200": ("Enabled", "Trigger")},
    ("POST", "/definitions/{name}/triggers/{trigger_id}/rotate"): {"200": ("The new secret, shown this once",
                                                                           "TriggerRotated")},
    ("DELETE", "/definitions/{name}/triggers/{trigger_id}"): {"200": ("Deleted", "TriggerRemoved")},
    ("POST", "/hooks/{key}"): {"201": ("Started", "HookAccepted"),
                               "200": ("An idempotent repeat: the instance it started", "HookAccepted")},
    ("POST", "/credentials"): {"201": ("Stored (metadata; the value is never answered)", "Credential")},
    ("GET", "/credentials"): {"200": ("A page of the tenant's credentials, by name", "CredentialPage")},
    ("GET", "/credentials/{name}"): {"200": ("Its metadata", "Credential")},
    ("PUT", "/credentials/{name}"): {"200": ("Rotated (metadata)", "Credential")},
    ("DELETE", "/credentials/{name}"): {"200": ("Deleted", "CredentialDeleted")},
    ("GET", "/kv/{namespace}"): {"200": ("A page of keys, in key order", "KvPage")},
    ("GET", "/kv/{namespace}/{key}"): {"200": ("The entry (its version also as ETag)", "KvEntry")},
    ("PUT", "/kv/{namespace}/{key}"): {"201": ("Created", "KvEntry"), "200": ("Replaced", "KvEntry")},
    ("DELETE", "/kv/{namespace}/{key}"): {"200": ("Deleted", "KvDeleted")},
    ("POST", "/tasks/{task_id}/links"): {"201": ("An approve and a reject link (signed, expiring, single-use)",
                                                 "DecisionLinks")},
    ("POST", "/decide/{token}"): {"200": ("Decided (an HTML page when posted as a form)", "LinkDecided")},
    ("GET", "/users/{user}/out-of-office"): {"200": ("The entry", "Absence")},
    ("PUT", "/users/{user}/out-of-office"): {"200": ("Set (replacing any earlier one)", "Absence")},
    ("DELETE", "/users/{user}/out-of-office"): {"200": ("Removed", "AbsenceRemoved")},
    ("GET", "/audit"): {"200": ("A page of audit records, newest first", "AuditPage")},
}
NOT_JSON = {("GET", "/instances/{instance_id}/events"), ("GET", "/ui"), ("GET", "/ui/{name}"),
            ("GET", "/ui/vendor/{name}"), ("GET", "/docs"), ("GET", "/decide/{token}"),
            ("GET", "/metrics"), ("GET", "/audit/export")}
# Operations a person's browser reaches from a link: their answers (errors too) may be an HTML page.
PAGES = {("GET", "/decide/{token}"), ("POST", "/decide/{token}")}


def _definition_schema() -> dict[str, Any]:
    from chalicelib.core.model import Definition

    return Definition.model_json_schema(ref_template="#/components/schemas/{model}")


def _model_schema(model: Any) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def _bodies() -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    from chalicelib.api.bodies import (
        ClaimTask,
        CompleteTask,
        Decision,
        MintLinks,
        OutOfOffice,
        PublishEvent,
        ReassignTask,
        SendEvent,
    )
    from chalicelib.service.requests import RunInstance, StartInstance
    from chalicelib.service.triggers import CreateTrigger, RotateTrigger

    run = _model_schema(RunInstance)
    run["properties"].pop("definition_name", None)  # from the path
    free = {"type": "object", "additionalProperties": True}
    return {
        ("POST", "/definitions"): ("required", {"$ref": "#/components/schemas/Definition"}),
        ("POST", "/definitions/validate"): ("required", {"$ref": "#/components/schemas/Definition"}),
        ("PUT", "/definitions/{name}"): ("required", {"$ref": "#/components/schemas/Definition"}),
        ("POST", "/definitions/import"): ("required", {"$ref": "#/components/schemas/DefinitionExport"}),
        ("POST", "/instances"): ("required", _start_schema(_model_schema(StartInstance))),
        ("PUT", "/definitions/{name}/aliases/{alias}"): ("required", {
            "type": "object", "required": ["routes"], "additionalProperties": False, "properties": {"routes": {
                "type": "array", "minItems": 1, "maxItems": 2, "items": {
                    "type": "object", "required": ["revision"], "additionalProperties": False, "properties": {
                        "revision": {"oneOf": [{"type": "integer", "minimum": 1}, _text(64)]},
                        "weight": {"type": "integer", "minimum": 0, "maximum": 100}}}}}}),
        ("POST", "/definitions/{name}/run"): ("optional", run),
        ("POST", "/instances/{instance_id}/cancel"): ("optional", {"type": "object", "properties": {
            "reason": _text(1000)}}),
        ("POST", "/instances/{instance_id}/events"): ("required", _model_schema(SendEvent)),
        ("POST", "/events"): ("required", _model_schema(PublishEvent)),
        ("POST", "/instances/{instance_id}/continue"): ("optional", {
            "type": "object", "additionalProperties": False, "properties": {"input_data": {
                "type": "object", "description": "laid over the completed run's final data"}}}),
        ("POST", "/tasks/{task_id}/complete"): ("required", _model_schema(CompleteTask)),
        ("POST", "/tasks/{task_id}/reassign"): ("required", _model_schema(ReassignTask)),
        ("POST", "/tasks/{task_id}/claim"): ("required", _model_schema(ClaimTask)),
        ("POST", "/tasks/{task_id}/unclaim"): ("required", _model_schema(ClaimTask)),
        ("POST", "/approvals/{task_id}/approve"): ("required", _model_schema(Decision)),
        ("POST", "/approvals/{task_id}/reject"): ("required", _model_schema(Decision)),
        ("POST", "/tasks/{task_id}/links"): ("optional", _model_schema(MintLinks)),
        ("PUT", "/users/{user}/out-of-office"): ("required", _model_schema(OutOfOffice)),
        ("POST", "/decide/{token}"): ("optional", {"type": "object", "additionalProperties": False, "properties": {
            "comment": _text(2000)}}),
        ("POST", "/callbacks/{key}"): ("optional", free),
        ("POST", "/definitions/{name}/triggers"): ("optional", _model_schema(CreateTrigger)),
        ("POST", "/definitions/{name}/triggers/{trigger_id}/rotate"): ("optional", _model_schema(RotateTrigger)),
        ("POST", "/hooks/{key}"): ("optional", {"description": "Any JSON: the instance's input.body"}),
        ("POST", "/credentials"): ("required", _credential_body(create=True)),
        ("PUT", "/credentials/{name}"): ("required", _credential_body(create=False)),
        ("PUT", "/kv/{namespace}/{key}"): ("required", {
            "title": "KvWrite", "type": "object", "required": ["value"], "additionalProperties": False,
            "properties": {"value": {"description": "Any JSON, at most 256 KiB as JSON"},
                           "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 31_622_400,
                                           "description": "Expires this long after the write (default: never)"}}}),
    }


def _credential_body(*, create: bool) -> dict[str, Any]:
    from chalicelib.tasks.credentials import MAX_VALUE_BYTES, MIN_VALUE_LENGTH, NAME_PATTERN

    properties: dict[str, Any] = {
        "value": {"type": "string", "minLength": MIN_VALUE_LENGTH, "maxLength": MAX_VALUE_BYTES, "writeOnly": True,
                  "description": f"The secret, at most {MAX_VALUE_BYTES} bytes of UTF-8 without control characters;"
                                 " never answered"},
        "description": _text(1000)}
    if create:
        properties = {"name": {"type": "string", "pattern": NAME_PATTERN}, **properties}
        return {"type": "object", "required": ["name", "value"], "additionalProperties": False,
                "properties": properties}
    return {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": properties}


def _start_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """StartInstance, whose workflow is named (definition_name) or sent inline (definition: api/adhoc.py)."""
    schema["properties"]["definition"] = {
        "allOf": [{"$ref": "#/components/schemas/Definition"}],
        "description": "Instead of definition_name (editor role): registered as the tenant's anonymous "
                       "definition (`adhoc-<hash>`, its name optional), then run"}
    # Exactly one of the two (else 400): said in words, since a top-level oneOf would leave generated
    # clients without a StartInstance class.
    schema["properties"]["definition_name"]["description"] = "The registered workflow to start; or send `definition`"
    schema["required"] = [r for r in schema.get("required", []) if r != "definition_name"]
    if not schema["required"]:
        schema.pop("required")
    return schema


def _lift_defs(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    return schema


def _named(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A model's schema as a component (a generated client names its class after it), by reference."""
    name = schema.get("title")
    if not name:
        return schema
    if components.setdefault(name, schema) != schema:
        raise ValueError(f"two different schemas are named {name}")
    return {"$ref": f"#/components/schemas/{name}"}


def _response_components(components: dict[str, Any]) -> None:
    """The response models (core/responses/) and what they reference, as components."""
    from pydantic import BaseModel
    from pydantic.json_schema import models_json_schema

    from chalicelib.core import responses

    names = sorted({name for codes in SUCCESS.values() for _, model in codes.values()
                    for name in ([model] if isinstance(model, str) else model)})
    _, top = models_json_schema([(responses.model(name), "validation") for name in names],
                                ref_template="#/components/schemas/{model}")
    ours = {name for module in responses.MODULES for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__}
    for name, schema in top["$defs"].items():
        if name in ours:
            for field in schema.get("properties", {}).values():
                # Answers have no defaults: a field is there or not ("required" says which).
                if field.get("default", 0) is None:
                    del field["default"]
        if components.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas are named {name}")  # a response model shadows another


def _tag(path: str) -> str:
    if path.startswith("/hooks") or "/triggers" in path:
        return "triggers"
    if path.startswith("/callbacks") or path.endswith("/events"):
        return "events"
    if path.endswith("/graph"):
        return "graphs"
    if path.endswith("/run"):
        return "instances"
    for tag in ("definitions", "instances", "tasks", "plugins", "credentials", "kv", "audit"):
        if path.startswith("/" + tag):
            return tag
    if path.startswith(("/approvals", "/decide", "/users")):
        return "tasks"
    return "service"


def build(app: Any, settings: Any) -> dict[str, Any]:
    prefix = settings.api_prefix.rstrip("/")
    components: dict[str, Any] = {
        "Error": {"type": "object", "required": ["detail"], "properties": {"detail": {
            "description": "A message, or {message, issues: [{code, location, message}]}"}}},
        "Definition": {},
    }
    definition = _definition_schema()
    components["Definition"] = _lift_defs(definition, components)
    bodies = {key: (need, _named(_lift_defs(schema, components), components))
              for key, (need, schema) in _bodies().items()}
    _response_components(components)
    query_params = _query_params()
    paths: dict[str, Any] = {}
    for full_path, methods in sorted(app.routes.items()):
        inside = bool(prefix) and full_path.startswith(prefix + "/")
        path = full_path[len(prefix):] if inside else full_path
        if inside and not settings.openapi_include_workflows:
            continue
        for method, entry in sorted(methods.items()):
            key = (method, path)
            guard = auth.guard_for(method, full_path, settings.api_prefix)
            operation: dict[str, Any] = {
                "operationId": entry.view_name, "tags": [_tag(path)],
                "summary": (entry.view_function.__doc__ or entry.view_name.replace("_", " ")).strip().split("\n")[0],
            }
            params = [{"name": name, "in": "path", "required": True,
                       "schema": {"type": "string", "minLength": 1, "maxLength": 1024 if name == "token" else 255,
                                  "pattern": "^[^/]+$"}}
                      for name in re.findall(r"{(\w+)}", path)]
            params += [{"name": name, "in": "query", "required": False, "schema": schema}
                       for name, schema in query_params.get(key, {}).items()]
            params += [{"name": name, "in": "header", "required": False, "schema": schema}
                       for name, schema in HEADERS.get(key, {}).items()]
            if params:
                operation["parameters"] = params
            if key in bodies:
                need, schema = bodies[key]
                content = {"application/json": {"schema": schema}}
                if path in ("/definitions", "/definitions/validate", "/definitions/{name}", "/definitions/import"):
                    content["application/x-yaml"] = {"schema": {"type": "string", "maxLength": 262_144}}
                if key in PAGES:  # the confirmation page's form
                    content["application/x-www-form-urlencoded"] = {"schema": schema}
                operation["requestBody"] = {"required": need == "required", "content": content}
            operation["responses"] = _responses(key, guard)
            if guard.role in (auth.PUBLIC, auth.BY_KEY):
                operation["security"] = []
            else:
                role = auth.required_role(guard, {flag: "true" for flag, _ in guard.elevated})
                operation["x-stepflow-role"] = guard.role
                operation["description"] = (f"Needs the **{guard.role}** role" +
                                            (f" ({role} with the elevating flag)" if role != guard.role else "") +
                                            " when authentication is on.")
            paths.setdefault(full_path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Stepflow API", "version": "1.0.0",
                 "description": "Workflows compiled to AWS Step Functions. Errors are {\"detail\": ...}, "
                                "one response per status under components/responses (also 404 for any "
                                "unknown path, 405 with Allow for a method a path does not take). "
                                "See docs/security.md for roles, tenants and limits."},
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "tags": TAGS,
        "paths": paths,
        "components": {"schemas": components, "responses": error_responses.components(), "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearer": []}],
    }


def _responses(key: tuple[str, str], guard: auth.Guard) -> dict[str, Any]:
    method, path = key
    success: dict[str, Any]
    if key in NOT_JSON:
        if path == "/metrics":
            success = {"200": {"description": "Prometheus text (format 0.0.4)",
                               "content": {"text/plain": {"schema": {"type": "string"}}}}}
        elif path == "/audit/export":
            success = {"200": {"description": "The matching records as NDJSON, newest first",
                               "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}}
        elif path.endswith("/events"):
            content = {es.NDJSON: {"schema": {"type": "string"}}, es.SSE: {"schema": {"type": "string"}}}
            success = {"200": {"description": "Events (NDJSON, or SSE for Accept: text/event-stream or sse=true)",
                               "content": content},
                       "204": {"description": "The instance has ended and every event was sent"}}
        else:
            page = {"text/html": {"schema": {"type": "string"}}}
            success = {"200": {"description": "A page or asset", "content": page}}
            if path != "/docs":
                success["304"] = {"description": "Not modified"}
    else:
        success = {code: {"description": text, "content": {"application/json": {"schema": _schema_of(model)}}}
                   for code, (text, model) in SUCCESS.get(key, {"200": ("OK", [])}).items()}
        if key == ("GET", "/definitions/{name}/export"):
            # The same document as YAML (format=yaml).
            success["200"]["content"]["application/x-yaml"] = {"schema": _schema_of("DefinitionExport")}
    if path.startswith("/ui"):  # the UI's own 404 is plain text, and it is public
        return {**success, "404": {"description": "No such asset",
                                   "content": {"text/plain": {"schema": {"type": "string"}}}}}
    error = {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    errors = dict(ERROR_CODES)
    if guard.role == auth.PUBLIC:
        for code in ("401", "403", "503"):
            errors.pop(code)
    errors.update(MORE_ERRORS.get(key, {}))
    answers = {**success, **{code: {**error, "description": text} for code, text in errors.items()}}
    if key in PAGES:
        page = {"text/html": {"schema": {"type": "string"}}}
        answers = {code: {**a, "content": {**a.get("content", {}), **page}} for code, a in answers.items()}
        answers.pop("304", None)
    return answers


def _schema_of(model: str | list[str]) -> dict[str, Any]:
    if isinstance(model, str):
        return {"$ref": f"#/components/schemas/{model}"}
    if model:
        return {"type": "array", "items": _schema_of(model[0])}
    return {}  # an operation without a response model (a test finds it)


def docs_page(spec: dict[str, Any]) -> str:
    rows = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            role = op.get("x-stepflow-role", "public" if op.get("security") == [] else "")
            rows.append(f"<tr><td class=m>{method.upper()}</td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(op['tags'][0])}</td><td>{html.escape(role)}</td>"
                        f"<td>{html.escape(op.get('summary', ''))}</td>"
                        f"<td>{', '.join(sorted(op['responses']))}</td></tr>")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>Stepflow API</title>"
            "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.m{font-weight:bold}</style></head><body>"
            f"<h1>{html.escape(spec['info']['title'])} {html.escape(spec['info']['version'])}</h1>"
            f"<p>{html.escape(spec['info']['description'])}</p>"
            "<p>The machine-readable contract: <a href=openapi.json>openapi.json</a> (OpenAPI 3.1). "
            "Send <code>Authorization: Bearer &lt;JWT&gt;</code> when authentication is on.</p>"
            "<table><tr><th>Method</th><th>Path</th><th>Tag</th><th>Role</th><th>Summary</th><th>Statuses</th></tr>"
            + "".join(rows) + "</table></body></html>")


def create_blueprint(services: Callable[[], Any], app: Callable[[], Any]) -> Blueprint:
    bp = Blueprint(__name__)
    cache: dict[str, Any] = {}

    def spec() -> dict[str, Any]:
        if "spec" not in cache:
            cache["spec"] = build(app(), services().settings)
        return cache["spec"]

    @bp.route("/openapi.json", methods=["GET"])
    def openapi_json() -> Any:
        """The OpenAPI 3.1 contract of this API."""
        return json_response(spec())

    @bp.route("/docs", methods=["GET"])
    def docs() -> Any:
        """A page listing every operation."""
        return Response(body=docs_page(spec()), status_code=200,
                        headers={"Content-Type": "text/html; charset=utf-8", "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})

    return bp


def dumps(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, sort_keys=True)
