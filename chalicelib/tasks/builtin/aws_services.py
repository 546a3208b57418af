"""aws.s3.get, aws.s3.put, aws.sqs.send, aws.eventbridge.put, aws.lambda.invoke: the caller's own AWS resources.

The step runner makes the calls with the service's role; on AWS that role reaches only resources named
``<resource prefix>tasks-...`` (chalicelib.resources.TASK_RESOURCE_INFIX, infra/roles.py SCOPES). Functions of the service itself are refused
here too, whatever the role allows: a step must not drive the step runner with a payload it forged.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from chalicelib.tasks.builtin.aws_calls import (
    AWS_ERRORS,
    MAX_PAYLOAD_BYTES,
    call,
    client_for,
    json_bytes,
    parse_json_or_text,
)
from chalicelib.tasks.errors import INVALID_CONFIG, StepError
from chalicelib.tasks.registry import ConfigIssue, TaskContext, TaskType

S3_MAX_BYTES = MAX_PAYLOAD_BYTES  # an object read into a step's output: the state carries 256 KiB at most
LAMBDA_FUNCTION_ERROR = "Aws.LambdaFunctionError"
S3_OBJECT_TOO_LARGE = "Aws.ObjectTooLarge"

_BUCKET = {"type": "string", "minLength": 3, "maxLength": 63, "pattern": r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
           "description": "The bucket name."}
_KEY = {"type": "string", "minLength": 1, "maxLength": 1024, "description": "The object key; templated."}
_QUEUE_URL = {"type": "string", "maxLength": 1024, "pattern": r"^https?://\S+$",
              "description": "The queue URL (GetQueueUrl gives it)."}
_FUNCTION = {"type": "string", "minLength": 1, "maxLength": 170,
             "pattern": r"^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]{1,128})?$",
             "description": "Your function's name or ARN (optionally with :version or :alias)."}
_CONTENT_TYPE = {"type": "string", "maxLength": 256, "pattern": r"^[\x21-\x7e][\x20-\x7e]*$"}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


S3_GET_CONFIG = _object({"bucket": _BUCKET, "key": _KEY,
                         "max_bytes": {"type": "integer", "minimum": 1, "maximum": S3_MAX_BYTES,
                                       "default": S3_MAX_BYTES, "description": "Fail past this many bytes."},
                         "as": {"enum": ["auto", "json", "text", "base64"], "default": "auto",
                                "description": "auto: JSON when the object's Content-Type says so, else text."}},
                        ["bucket", "key"])
S3_GET_OUTPUT = _object({"body": {"description": "The object: parsed JSON, text or base64 (see `as`)."},
                         "content_type": {"type": ["string", "null"]}, "size": {"type": "integer"},
                         "etag": {"type": ["string", "null"]}}, ["body", "size"])
S3_PUT_CONFIG = _object({"bucket": _BUCKET, "key": _KEY,
                         "body": {"description": "An object or array is written as JSON, a string as UTF-8 text."},
                         "content_type": _CONTENT_TYPE}, ["bucket", "key", "body"])
S3_PUT_OUTPUT = _object({"bucket": {"type": "string"}, "key": {"type": "string"}, "size": {"type": "integer"},
                         "etag": {"type": ["string", "null"]}, "version_id": {"type": ["string", "null"]}},
                        ["bucket", "key", "size"])
SQS_CONFIG = _object({"queue_url": _QUEUE_URL,
                      "body": {"description": "The message: an object or array is sent as JSON, a string as is."},
                      "delay_seconds": {"type": "integer", "minimum": 0, "maximum": 900},
                      "group_id": {"type": "string", "minLength": 1, "maxLength": 128,
                                   "description": "FIFO queues: the message group."},
                      "deduplication_id": {"type": "string", "minLength": 1, "maxLength": 128,
                                           "description": "FIFO queues: defaults to the step's execution and id, "
                                                          "so a retried step does not send twice."}},
                     ["queue_url", "body"])
SQS_OUTPUT = _object({"message_id": {"type": "string"}, "sequence_number": {"type": ["string", "null"]}},
                     ["message_id"])
EVENTBRIDGE_CONFIG = _object({
    "bus": {"type": "string", "minLength": 1, "maxLength": 1600, "description": "The event bus name or ARN."},
    "source": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": r"^[A-Za-z0-9._/-]+$"},
    "detail_type": {"type": "string", "minLength": 1, "maxLength": 128},
    "detail": {"type": "object", "description": "The event's detail (JSON object); templated."}},
    ["bus", "source", "detail_type", "detail"])
EVENTBRIDGE_OUTPUT = _object({"event_id": {"type": "string"}}, ["event_id"])
LAMBDA_CONFIG = _object({"function": _FUNCTION,
                         "payload": {"description": "The event the function gets; defaults to the step input."},
                         "invocation": {"enum": ["sync", "async"], "default": "sync",
                                        "description": "sync waits for the result; async only queues the event."}},
                        ["function"])
LAMBDA_OUTPUT = _object({"status_code": {"type": "integer"},
                         "result": {"description": "What the function returned (sync only)."}}, ["status_code"])


def _body_text(value: Any, where: str) -> str:
    return json_bytes(value, where)


def _s3_get(aws: Callable[[str], Any] | None) -> Callable[[TaskContext], dict[str, Any]]:
    def handle(ctx: TaskContext) -> dict[str, Any]:
        cfg = ctx.config
        s3 = client_for(aws, "s3")
        limit = cfg.get("max_bytes", S3_MAX_BYTES)
        where = f"s3://{cfg['bucket']}/{cfg['key']}"
        got = call(f"reading {where}", s3.get_object, Bucket=cfg["bucket"], Key=cfg["key"])
        # Judged by the declared length before reading, and never more than limit + 1 bytes read either way.
        declared = int(got.get("ContentLength") or 0)
        data = b"" if declared > limit else got["Body"].read(limit + 1)
        got["Body"].close()
        if declared > limit or len(data) > limit:
            raise StepError(S3_OBJECT_TOO_LARGE, f"{where} is larger than {limit:,} bytes", details={"limit": limit})
        content_type = got.get("ContentType")
        mode = cfg.get("as", "auto")
        if mode == "base64":
            body: Any = base64.b64encode(data).decode()
        elif mode == "json":
            try:
                body = json.loads(data)
            except ValueError:
                raise StepError(INVALID_CONFIG, f"{where} is not JSON (as: json)") from None
        elif mode == "text":
            body = data.decode("utf-8", errors="replace")
        else:
            body = parse_json_or_text(data, content_type)
        return {"body": body, "content_type": content_type, "size": len(data), "etag": got.get("ETag")}

    return handle


def _s3_put(aws: Callable[[str], Any] | None) -> Callable[[TaskContext], dict[str, Any]]:
    def handle(ctx: TaskContext) -> dict[str, Any]:
        cfg = ctx.config
        body = cfg["body"]
        data = _body_text(body, "config.body").encode("utf-8")
        content_type = cfg.get("content_type") or (
            "text/plain; charset=utf-8" if isinstance(body, str) else "application/json")
        s3 = client_for(aws, "s3")
        # A put of the same key and bytes is idempotent: a retry after a lost answer converges.
        put = call(f"writing s3://{cfg['bucket']}/{cfg['key']}", s3.put_object, Bucket=cfg["bucket"],
                   Key=cfg["key"], Body=data, ContentType=content_type)
        return {"bucket": cfg["bucket"], "key": cfg["key"], "size": len(data), "etag": put.get("ETag"),
                "version_id": put.get("VersionId")}

    return handle


def _sqs_send(aws: Callable[[str], Any] | None) -> Callable[[TaskContext], dict[str, Any]]:
    def handle(ctx: TaskContext) -> dict[str, Any]:
        cfg = ctx.config
        params: dict[str, Any] = {"QueueUrl": cfg["queue_url"], "MessageBody": _body_text(cfg["body"], "config.body")}
        if "delay_seconds" in cfg:
            params["DelaySeconds"] = cfg["delay_seconds"]
        if "group_id" in cfg:
            params["MessageGroupId"] = cfg["group_id"]
            dedup = cfg.get("deduplication_id") or f"{ctx.execution_id}/{ctx.step_id}"
            params["MessageDeduplicationId"] = _dedup_id(dedup)
        sent = call("sending to the queue", client_for(aws, "sqs").send_message, **params)
        return {"message_id": sent["MessageId"], "sequence_number": sent.get("SequenceNumber")}

    return handle


def _dedup_id(text: str) -> str:
    import hashlib

    # SQS takes 128 characters of [A-Za-z0-9!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~]: a hash always fits.
    return text if len(text) <= 128 and text.isascii() and " " not in text else hashlib.sha256(text.encode()).hexdigest()


def _eventbridge_put(aws: Callable[[str], Any] | None) -> Callable[[TaskContext], dict[str, Any]]:
    def handle(ctx: TaskContext) -> dict[str, Any]:
        cfg = ctx.config
        entry = {"EventBusName": cfg["bus"], "Source": cfg["source"], "DetailType": cfg["detail_type"],
                 "Detail": _body_text(cfg["detail"], "config.detail")}
        answer = call("putting the event", client_for(aws, "events").put_events, Entries=[entry])
        result = (answer.get("Entries") or [{}])[0]
        if answer.get("FailedEntryCount") or not result.get("EventId"):
            code = str(result.get("ErrorCode") or "refused")[:80]
            name = "Aws.Throttled" if "Throttl" in code else "Aws.Rejected"
            raise StepError(name, f"putting the event: {code}", details={"code": code})
        return {"event_id": result["EventId"]}

    return handle


def _lambda_invoke(aws: Callable[[str], Any] | None, reserved: Callable[[str], bool]) -> Callable[..., dict[str, Any]]:
    def handle(ctx: TaskContext) -> dict[str, Any]:
        cfg = ctx.config
        function = cfg["function"]
        if reserved(function):
            raise StepError(INVALID_CONFIG, "config.function: the service's own functions cannot be invoked by a step")
        payload = cfg["payload"] if "payload" in cfg else ctx.input
        params = {"FunctionName": function, "Payload": _body_text(payload, "config.payload").encode("utf-8"),
                  "InvocationType": "Event" if cfg.get("invocation") == "async" else "RequestResponse"}
        answer = call("invoking the function", client_for(aws, "lambda").invoke, **params)
        status = int(answer.get("StatusCode") or 0)
        if params["InvocationType"] == "Event":
            return {"status_code": status}
        stream = answer.get("Payload")
        data = stream.read(MAX_PAYLOAD_BYTES + 1) if stream is not None else b""
        if len(data) > MAX_PAYLOAD_BYTES:
            raise StepError("Aws.ResultTooLarge", f"the function returned more than {MAX_PAYLOAD_BYTES:,} bytes")
        result = parse_json_or_text(data, "application/json") if data else None
        if answer.get("FunctionError"):
            # The function's own error type is the user's code speaking: safe to pass on, bounded.
            kind = result.get("errorType") if isinstance(result, dict) else None
            raise StepError(LAMBDA_FUNCTION_ERROR, f"the function failed ({str(kind or 'Unhandled')[:80]})",
                            details={"error_type": kind})
        return {"status_code": status, "result": result}

    return handle


def _function_issues(config: dict[str, Any], reserved: Callable[[str], bool]) -> list[ConfigIssue]:
    function = config.get("function")
    if isinstance(function, str) and "{{" not in function and reserved(function):
        return [ConfigIssue("config.function", "the service's own functions cannot be invoked by a step")]
    return []


def reserved_functions(prefixes: tuple[str, ...], allowed: str = "") -> Callable[[str], bool]:
    """True for a function name (or ARN) of the service itself: one that starts with one of its resource
    ``prefixes``, unless it starts with that prefix followed by ``allowed`` (the functions steps may invoke)."""
    def reserved(function: str) -> bool:
        name = function.split(":function:", 1)[1] if ":function:" in function else function
        return any(prefix and name.startswith(prefix) and not (allowed and name.startswith(prefix + allowed))
                   for prefix in prefixes)

    return reserved


def register(registry: Any, *, aws: Callable[[str], Any] | None = None,
             reserved_functions: Callable[[str], bool] | None = None) -> None:
    reserved = reserved_functions or (lambda _name: False)
    errors = AWS_ERRORS
    registry.register(TaskType(
        id="aws.s3.get", name="Read an S3 object", category="aws", handler=_s3_get(aws),
        description="Reads an object (at most 256 KiB) into the step output: JSON parsed, text or base64.",
        config_schema=S3_GET_CONFIG, output_schema=S3_GET_OUTPUT, errors=(*errors, S3_OBJECT_TOO_LARGE),
        examples=({"title": "Read an order document", "config": {"bucket": "stepflow-prod-tasks-orders", "key": "orders/{{ order_id }}.json"},
                   "output": {"body": {"id": "o-1", "total": 12.5}, "content_type": "application/json", "size": 28,
                              "etag": "\"9b2cf535f27731c974343645a3985328\""}},)))
    registry.register(TaskType(
        id="aws.s3.put", name="Write an S3 object", category="aws", handler=_s3_put(aws),
        description="Writes `body` (JSON for an object or array, else text) to a key; at most 256 KiB.",
        config_schema=S3_PUT_CONFIG, output_schema=S3_PUT_OUTPUT, errors=errors,
        examples=({"title": "Archive the approved order",
                   "config": {"bucket": "stepflow-prod-tasks-archive", "key": "approved/{{ order_id }}.json",
                              "body": {"order": "{{ order_id }}", "approved_by": "{{ approver }}"}},
                   "output": {"bucket": "stepflow-prod-tasks-archive", "key": "approved/o-1.json", "size": 39,
                              "etag": "\"5d41402abc4b2a76b9719d911017c592\"", "version_id": None}},)))
    registry.register(TaskType(
        id="aws.sqs.send", name="Send an SQS message", category="aws", handler=_sqs_send(aws),
        description="Sends one message to a queue. FIFO queues: a retried step reuses its deduplication id.",
        config_schema=SQS_CONFIG, output_schema=SQS_OUTPUT, errors=errors,
        examples=({"title": "Queue a fulfilment job",
                   "config": {"queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/stepflow-prod-tasks-fulfilment",
                              "body": {"order": "{{ order_id }}"}},
                   "output": {"message_id": "5fea7756-0ea4-451a-a703-a558b933e274", "sequence_number": None}},)))
    registry.register(TaskType(
        id="aws.eventbridge.put", name="Put an EventBridge event", category="aws", handler=_eventbridge_put(aws),
        description="Puts one event on one of your event buses.",
        config_schema=EVENTBRIDGE_CONFIG, output_schema=EVENTBRIDGE_OUTPUT, errors=errors,
        examples=({"title": "Announce a shipped order",
                   "config": {"bus": "stepflow-prod-tasks-orders", "source": "acme.orders", "detail_type": "OrderShipped",
                              "detail": {"order": "{{ order_id }}"}},
                   "output": {"event_id": "11710aed-b79e-4468-a20b-bb3c0c3b4860"}},)))
    registry.register(TaskType(
        id="aws.lambda.invoke", name="Invoke your Lambda function", category="aws", handler=_lambda_invoke(aws, reserved),
        description="Invokes one of your functions with `payload` (default: the step input); sync returns its result.",
        config_schema=LAMBDA_CONFIG, output_schema=LAMBDA_OUTPUT, errors=(*errors, LAMBDA_FUNCTION_ERROR),
        check_config=lambda config: _function_issues(config, reserved),
        examples=({"title": "Score a lead with your own function",
                   "config": {"function": "stepflow-prod-tasks-lead-scorer", "payload": {"email": "{{ email }}"}},
                   "output": {"status_code": 200, "result": {"score": 0.82}}},)))
