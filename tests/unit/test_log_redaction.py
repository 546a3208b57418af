"""The log filter (chalicelib/log_caps.py): secret-named fields, bearer tokens, JWTs and `name=value`
secrets never reach a line, through the service's own logger and the local server's text formatter."""

from __future__ import annotations

import io
import json
import logging

from chalicelib.log_caps import REDACTED, CappedTextFormatter, capped_json, redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVlLTAxMjM0"


def test_secret_named_fields_and_tokens_in_text_are_redacted():
    line = json.loads(capped_json({
        "level": "INFO", "message": f"called with Authorization: Bearer {JWT} and token=abcd1234efgh",
        "task_token": "AAAAKgAAAAIAAAAAAAAAA", "extra": {"password": "hunter22", "webhook_secret": "s3cr3t-value",
                                                        "kept": "plain value", "list": [f"jwt {JWT}"]},
        "status": 200}))
    text = json.dumps(line)
    for secret in (JWT, "abcd1234efgh", "AAAAKgAAAAIAAAAAAAAAA", "hunter22", "s3cr3t-value"):
        assert secret not in text
    assert line["task_token"] == REDACTED and line["extra"]["password"] == REDACTED
    assert line["extra"]["kept"] == "plain value" and line["status"] == 200
    assert "Bearer ***" in line["message"] and "token=***" in line["message"]


def test_the_services_logger_and_the_text_formatter_redact():
    from chalicelib.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    target = logging.getLogger("stepflow")
    target.addHandler(handler)
    try:
        logging.getLogger("stepflow.test").warning("token: %s", "zzzz-secret-zzzz", extra={"secret": "yyyy"})
    finally:
        target.removeHandler(handler)
    assert "zzzz-secret-zzzz" not in stream.getvalue() and "yyyy" not in stream.getvalue()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "password=%s", ("hunter22",), None)
    assert "hunter22" not in CappedTextFormatter().format(record)


def test_ordinary_values_are_left_alone():
    data = {"message": "instance i-1 completed in 3 steps", "tokens_used": 0, "definition": "order"}
    assert redact(data) == {**data, "tokens_used": 0}
