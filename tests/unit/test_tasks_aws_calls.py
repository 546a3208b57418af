"""AWS calls on a step's behalf: each kind of failure gets its named error, with the service's code and never
its message; no client configured is a named error too."""

from __future__ import annotations

import pytest

from chalicelib.tasks.builtin.aws_calls import call, client_for, json_bytes
from chalicelib.tasks.builtin.aws_services import reserved_functions
from chalicelib.tasks.errors import StepError


class FakeClientError(Exception):
    def __init__(self, code: str, status: int, message: str):
        super().__init__(message)
        self.response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


SECRET_TEXT = "User: arn:aws:iam::123456789012:role/stepflow-prod-api is not authorized"


@pytest.mark.parametrize("code, status, name", [
    ("NoSuchKey", 404, "Aws.NotFound"), ("ResourceNotFoundException", 404, "Aws.NotFound"),
    ("AWS.SimpleQueueService.NonExistentQueue", 400, "Aws.NotFound"), ("", 404, "Aws.NotFound"),
    ("AccessDenied", 403, "Aws.AccessDenied"), ("AuthorizationError", 403, "Aws.AccessDenied"),
    ("ThrottlingException", 400, "Aws.Throttled"), ("SlowDown", 503, "Aws.Throttled"),
    ("InternalError", 500, "Aws.Unavailable"), ("MessageRejected", 400, "Aws.Rejected"),
    ("InvalidParameterValue", 400, "Aws.Rejected"),
])
def test_a_service_error_is_named_by_its_kind_and_carries_the_code_not_the_message(code, status, name):
    def fail(**_):
        raise FakeClientError(code, status, SECRET_TEXT)

    with pytest.raises(StepError) as caught:
        call("reading s3://b/k", fail, Bucket="b")
    assert caught.value.error == name
    assert "123456789012" not in caught.value.message and "not authorized" not in caught.value.message
    assert caught.value.message.startswith("reading s3://b/k: ")


def test_no_answer_is_unavailable_and_a_missing_client_is_not_configured():
    def refuse(**_):
        raise ConnectionError("Could not connect to the endpoint URL: https://internal.example:4566/")

    with pytest.raises(StepError) as caught:
        call("sending", refuse)
    assert caught.value.error == "Aws.Unavailable" and "internal.example" not in caught.value.message
    with pytest.raises(StepError) as caught:
        client_for(None, "sqs")
    assert caught.value.error == "Stepflow.NotConfigured"


def test_a_message_body_is_bounded():
    assert json_bytes({"a": 1}, "config.body") == '{"a": 1}'
    assert json_bytes("as is", "config.body") == "as is"
    with pytest.raises(StepError) as caught:
        json_bytes("x" * (256 * 1024 + 1), "config.body")
    assert caught.value.error == "Stepflow.InvalidConfig" and "config.body" in caught.value.message


def test_the_stacks_own_functions_are_reserved_but_its_task_functions_are_not():
    reserved = reserved_functions(("stepflow-prod-",), "tasks-")
    assert reserved("stepflow-prod-step_runner")
    assert reserved("arn:aws:lambda:us-east-1:123456789012:function:stepflow-prod-task_registrar:live")
    assert not reserved("stepflow-prod-tasks-scorer")
    assert not reserved("arn:aws:lambda:us-east-1:123456789012:function:stepflow-prod-tasks-scorer")
    assert not reserved("my-scorer")
