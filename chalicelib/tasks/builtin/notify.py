"""notify.email (SES SendEmail), notify.sns (SNS Publish) and notify.slack (an incoming webhook, egress-checked)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from chalicelib.tasks.builtin.aws_calls import AWS_ERRORS, call, client_for, json_bytes
from chalicelib.tasks.errors import StepError
from chalicelib.tasks.registry import TaskContext, TaskType

SLACK_STATUS_ERROR = "Slack.StatusError"
SLACK_TIMEOUT = "HttpTimeout"
SLACK_CONNECTION_ERROR = "HttpConnectionError"
SLACK_ERRORS = (SLACK_STATUS_ERROR, SLACK_TIMEOUT, SLACK_CONNECTION_ERROR, "HttpEgressDenied")
SLACK_TIMEOUT_SECONDS = 10
MAX_RECIPIENTS = 50
_EMAIL = {"type": "string", "minLength": 3, "maxLength": 320, "pattern": r"^[^\s@<>,;]+@[^\s@<>,;]+$"}
_ADDRESSES = {"type": "array", "items": _EMAIL, "minItems": 1, "maxItems": MAX_RECIPIENTS, "uniqueItems": True}

EMAIL_CONFIG: dict[str, Any] = {
    "type": "object",
    "properties": {
        "from": {**_EMAIL, "description": "A sender address (or domain) verified in SES."},
        "to": {**_ADDRESSES, "description": f"At most {MAX_RECIPIENTS} addresses."},
        "cc": _ADDRESSES,
        "reply_to": _ADDRESSES,
        "subject": {"type": "string", "minLength": 1, "maxLength": 998, "description": "Templated."},
        "text": {"type": "string", "maxLength": 100_000, "description": "The plain-text body; templated."},
        "html": {"type": "string", "maxLength": 100_000, "description": "An HTML body; templated."},
    },
    "required": ["from", "to", "subject"],
    "anyOf": [{"required": ["text"]}, {"required": ["html"]}],
    "additionalProperties": False,
}
SNS_CONFIG: dict[str, Any] = {
    "type": "object",
    "properties": {
        "topic_arn": {"type": "string", "maxLength": 256,
                      "pattern": r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$"},
        "message": {"description": "A string is sent as it is; anything else as JSON. Templated."},
        "subject": {"type": "string", "minLength": 1, "maxLength": 100},
        "group_id": {"type": "string", "minLength": 1, "maxLength": 128, "description": "FIFO topics."},
    },
    "required": ["topic_arn", "message"],
    "additionalProperties": False,
}
SLACK_CONFIG: dict[str, Any] = {
    "type": "object",
    "properties": {
        "webhook_url": {"type": "string", "maxLength": 2048, "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$",
                        "description": "The incoming webhook's URL (it is a secret: keep it in a credential)."},
        "text": {"type": "string", "minLength": 1, "maxLength": 40_000, "description": "The message; templated."},
        "blocks": {"type": "array", "maxItems": 50, "items": {"type": "object"},
                   "description": "Block Kit blocks, sent as they are (templated)."},
    },
    "required": ["webhook_url", "text"],
    "additionalProperties": False,
}
MESSAGE_OUTPUT: dict[str, Any] = {"type": "object", "properties": {"message_id": {"type": "string"}},
                                  "required": ["message_id"], "additionalProperties": False}
SLACK_OUTPUT: dict[str, Any] = {"type": "object", "properties": {"status": {"type": "integer"}},
                                "required": ["status"], "additionalProperties": False}


def _email(aws: Callable[[str], Any] | None) -> Callable[[TaskContext], dict[str, Any]]:
    def handle(ctx: TaskContext) -> dict[str, Any]:
        cfg = ctx.config
        body: dict[str, Any] = {}
        if "text" in cfg:
            body["Text"] = {"Data": cfg["text"], "Charset": "UTF-8"}
        if "html" in cfg:
            body["Html"] = {"Data": cfg["html"], "Charset": "UTF-8"}
        destination: dict[str, Any] = {"ToAddresses": cfg["to"]}
        if cfg.get("cc"):
            destination["CcAddresses"] = cfg["cc"]
        params: dict[str, Any] = {"Source": cfg["from"], "Destination": destination,
                                  "Message": {"Subject": {"Data": cfg["subject"], "Charset": "UTF-8"}, "Body": body}}
        if cfg.get("reply_to"):
            params["ReplyToAddresses"] = cfg["reply_to"]
        sent = call("sending the email", client_for(aws, "ses").send_email, **params)
        return {"message_id": sent["MessageId"]}

    return handle


def _sns(aws: Callable[[str], Any] | None) -> Callable[[TaskContext], dict[str, Any]]:
    def handle(ctx: TaskContext) -> dict[str, Any]:
        cfg = ctx.config
        params: dict[str, Any] = {"TopicArn": cfg["topic_arn"], "Message": json_bytes(cfg["message"], "config.message")}
        if "subject" in cfg:
            params["Subject"] = cfg["subject"]
        if "group_id" in cfg:
            params["MessageGroupId"] = cfg["group_id"]
            params["MessageDeduplicationId"] = _dedup(f"{ctx.execution_id}/{ctx.step_id}")
        sent = call("publishing to the topic", client_for(aws, "sns").publish, **params)
        return {"message_id": sent["MessageId"]}

    return handle


def _dedup(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _slack(http_client: Any) -> Callable[[TaskContext], dict[str, Any]]:
    def handle(ctx: TaskContext) -> dict[str, Any]:
        cfg = ctx.config
        if http_client is None:
            raise StepError("Stepflow.NotConfigured", "this service has no HTTP client configured for steps")
        payload = {"text": cfg["text"], **({"blocks": cfg["blocks"]} if "blocks" in cfg else {})}
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(cfg["webhook_url"], data=data, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "Stepflow/1.0"})
        # The webhook URL is the secret: no message below names it.
        http_client.resolve_and_check(cfg["webhook_url"])
        try:
            with http_client.open(request, timeout=SLACK_TIMEOUT_SECONDS, follow_redirects=False) as answer:
                answer.read(4096)
                return {"status": int(answer.status)}
        except urllib.error.HTTPError as error:
            error.close()
            raise StepError(SLACK_STATUS_ERROR, f"the Slack webhook answered {error.code}",
                            details={"status": error.code}) from None
        except TimeoutError:
            raise StepError(SLACK_TIMEOUT, f"the Slack webhook did not answer within {SLACK_TIMEOUT_SECONDS} seconds") from None
        except StepError:
            raise
        except OSError:
            raise StepError(SLACK_CONNECTION_ERROR, "the Slack webhook could not be reached") from None

    return handle


def register(registry: Any, *, aws: Callable[[str], Any] | None = None, http_client: Any = None) -> None:
    registry.register(TaskType(
        id="notify.email", name="Send an email (SES)", category="notify", handler=_email(aws),
        description="Sends one email through Amazon SES from a verified sender; text and/or HTML body.",
        config_schema=EMAIL_CONFIG, output_schema=MESSAGE_OUTPUT, errors=AWS_ERRORS,
        examples=({"title": "Tell the requester", "config": {
            "from": "workflows@acme.example", "to": ["{{ requester_email }}"],
            "subject": "Expense {{ expense_id }} approved", "text": "Approved by {{ approver }}."},
            "output": {"message_id": "0100018c-7f1e-4e8e-9b1e-000000000000"}},)))
    registry.register(TaskType(
        id="notify.sns", name="Publish to SNS", category="notify", handler=_sns(aws),
        description="Publishes one message to an SNS topic (JSON unless `message` is a string).",
        config_schema=SNS_CONFIG, output_schema=MESSAGE_OUTPUT, errors=AWS_ERRORS,
        examples=({"title": "Page the on-call", "config": {
            "topic_arn": "arn:aws:sns:us-east-1:123456789012:stepflow-prod-tasks-on-call", "subject": "Order stuck",
            "message": {"order": "{{ order_id }}", "since": "{{ created_at }}"}},
            "output": {"message_id": "95df01b4-ee98-5cb9-9903-4c221d41eb5e"}},)))
    registry.register(TaskType(
        id="notify.slack", name="Post to Slack", category="notify", handler=_slack(http_client),
        description="Posts `text` (and optional Block Kit `blocks`) to a Slack incoming webhook; egress-checked.",
        config_schema=SLACK_CONFIG, output_schema=SLACK_OUTPUT, errors=SLACK_ERRORS,
        examples=({"title": "Announce an approval", "config": {
            "webhook_url": "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
            "text": ":white_check_mark: {{ expense_id }} approved by {{ approver }}"},
            "output": {"status": 200}},)))
