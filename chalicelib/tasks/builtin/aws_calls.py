"""One AWS call made on a step's behalf: named errors a workflow can retry or catch, no internals in messages.

The client factory is injected (``aws(service) -> boto3 client``), so the catalog imports no boto3; a
registry built without one fails these steps with ``Stepflow.NotConfigured``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.tasks.errors import StepError

NOT_CONFIGURED = "Stepflow.NotConfigured"
AWS_NOT_FOUND = "Aws.NotFound"  # the bucket, key, queue, topic, bus or function does not exist
AWS_ACCESS_DENIED = "Aws.AccessDenied"  # the service's role may not do this
AWS_THROTTLED = "Aws.Throttled"  # worth a retry with backoff
AWS_REJECTED = "Aws.Rejected"  # the service refused the request as given (bad parameter, unverified sender)
AWS_UNAVAILABLE = "Aws.Unavailable"  # no answer, or a server-side failure: worth a retry
AWS_ERRORS = (AWS_NOT_FOUND, AWS_ACCESS_DENIED, AWS_THROTTLED, AWS_REJECTED, AWS_UNAVAILABLE)

MAX_PAYLOAD_BYTES = 256 * 1024  # what SQS, SNS, EventBridge and a Step Functions state each carry at most

_NOT_FOUND = ("NoSuchKey", "NoSuchBucket", "NotFound", "404", "ResourceNotFoundException",
              "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NotFoundException")
_DENIED = ("AccessDenied", "AccessDeniedException", "AuthorizationError", "UnauthorizedOperation",
           "KMSAccessDeniedException")
_THROTTLED = ("Throttling", "ThrottlingException", "TooManyRequestsException", "SlowDown",
              "RequestLimitExceeded", "Throttled", "LimitExceededException")


@dataclass(frozen=True)
class AwsAccess:
    """What the aws.* and notify.* types reach AWS with: ``clients(service)`` gives a boto3 client;
    ``reserved(function)`` is true for the service's own Lambda functions, which no step may invoke."""

    clients: Callable[[str], Any]
    reserved: Callable[[str], bool] = field(default=lambda _function: False)


def client_for(aws: Callable[[str], Any] | None, service: str) -> Any:
    if aws is None:
        raise StepError(NOT_CONFIGURED, f"this service has no {service} client configured for steps")
    return aws(service)


def call(what: str, method: Callable[..., Any], **params: Any) -> Any:
    """``method(**params)``; a failure becomes a StepError naming the kind of failure and the service's error
    code, never the service's message (it can carry account ids and ARNs the workflow author did not write)."""
    try:
        return method(**params)
    except StepError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore's ClientError and connection errors, told apart below
        response = getattr(exc, "response", None)
        if not isinstance(response, dict):
            raise StepError(AWS_UNAVAILABLE, f"{what}: the service did not answer") from None
        error = response.get("Error") or {}
        code = str(error.get("Code") or "")[:80]
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if code in _NOT_FOUND or (status == 404 and not code):
            name = AWS_NOT_FOUND
        elif code in _DENIED or status == 403:
            name = AWS_ACCESS_DENIED
        elif code in _THROTTLED or status == 429:
            name = AWS_THROTTLED
        elif isinstance(status, int) and status >= 500:
            name = AWS_UNAVAILABLE
        else:
            name = AWS_REJECTED
        raise StepError(name, f"{what}: {code or 'refused'}", details={"code": code, "status": status}) from None


def json_bytes(value: Any, where: str, limit: int = MAX_PAYLOAD_BYTES) -> str:
    """A value as the JSON text a message carries; a string is sent as it is. Bounded."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, allow_nan=False)
    size = len(text.encode("utf-8"))
    if size > limit:
        raise StepError("Stepflow.InvalidConfig", f"{where}: {size:,} bytes; at most {limit:,}")
    return text


def parse_json_or_text(data: bytes, content_type: str | None) -> Any:
    """JSON when it says so (or parses as such for application/json), else UTF-8 text."""
    text = data.decode("utf-8", errors="replace")
    if content_type and "json" in content_type.lower():
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
