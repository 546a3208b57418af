"""LocalStack's `process` Lambda executor (infra/localstack_executor): run by `make test-localstack`.

Small functions, made here, invoked through LocalStack's Lambda API: what a function returns, prints and
raises reaches the caller as it would from AWS Lambda; a timeout stops the invocation and the environment
runs the next one; an import error is the runtime's; a function sees its own code and the runtime's boto3,
not the packages of the interpreter that runs it (so a dependency missing from a zip shows here too).
"""

from __future__ import annotations

import base64
import io
import json
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

ENDPOINT = os.environ.get("STEPFLOW_LOCALSTACK_ENDPOINT", "").rstrip("/")
pytestmark = pytest.mark.skipif(not ENDPOINT, reason="no LocalStack endpoint: `make test-localstack` runs these")

TEMPLATE = Path(__file__).resolve().parents[2] / "build" / "package" / "dev" / "sam.json"
CODE = '''
import importlib.util, os, sys, time

def answer(event, context):
    print("answering", event["question"])
    return {"event": event, "function": context.function_name, "time_left": context.get_remaining_time_in_millis() > 0}

def fail(event, context):
    raise ValueError("no answer to " + event["question"])

def linger(event, context):
    if event.get("linger"):
        time.sleep(30)  # outlives the function's 1 s timeout
    return "prompt"

def environment(event, context):
    return {"first_path": sys.path[0], "task_root": os.environ["LAMBDA_TASK_ROOT"],
            "found": {name: importlib.util.find_spec(name) is not None for name in event["modules"]}}
'''


def runtime() -> str:
    """The packaged functions' runtime: the executor runs these on the same interpreter."""
    if TEMPLATE.exists():
        for resource in json.loads(TEMPLATE.read_text(encoding="utf-8"))["Resources"].values():
            if resource.get("Type") == "AWS::Serverless::Function":
                return resource["Properties"]["Runtime"]
    return "python3.12"


@pytest.fixture(scope="module")
def functions() -> Any:
    import boto3

    session = boto3.session.Session()
    lam, iam = session.client("lambda"), session.client("iam")
    run = uuid.uuid4().hex[:8]
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=f"executor-test-{run}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handlers.py", CODE)
    names = {}
    handlers = {"answer": "handlers.answer", "fail": "handlers.fail", "linger": "handlers.linger",
                "environment": "handlers.environment", "missing": "missing_module.handler"}
    for short, handler in handlers.items():
        names[short] = f"executor-{run}-{short}"
        lam.create_function(FunctionName=names[short], Runtime=runtime(), Role=role, Handler=handler, Timeout=1,
                            Code={"ZipFile": archive.getvalue()})
    for name in names.values():
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def invoke(short: str, event: dict[str, Any]) -> tuple[str | None, Any, str]:
        response = lam.invoke(FunctionName=names[short], Payload=json.dumps(event).encode(), LogType="Tail")
        logs = base64.b64decode(response.get("LogResult") or b"").decode("utf-8", "replace")
        return response.get("FunctionError"), json.loads(response["Payload"].read()), logs

    yield invoke
    for name in names.values():
        lam.delete_function(FunctionName=name)
    iam.delete_role(RoleName=f"executor-test-{run}")


def test_a_function_returns_its_result_and_its_logs(functions):
    error, payload, logs = functions("answer", {"question": "six by nine"})
    assert error is None
    assert payload["event"] == {"question": "six by nine"} and payload["time_left"] is True
    assert payload["function"].endswith("-answer")
    assert "answering six by nine" in logs and "START RequestId:" in logs and "END RequestId:" in logs


def test_an_unhandled_error_reaches_the_caller_with_its_type(functions):
    error, payload, logs = functions("fail", {"question": "six by nine"})
    assert error == "Unhandled"
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "no answer to six by nine"
    assert payload["stackTrace"] and "handlers.py" in payload["stackTrace"][0]
    assert not any("bootstrap.py" in line for line in payload["stackTrace"])
    assert "[ERROR] ValueError: no answer to six by nine" in logs


def test_a_timed_out_invocation_fails_and_the_next_one_runs(functions):
    error, payload, _ = functions("linger", {"linger": True})
    assert error == "Unhandled" and payload["errorType"] == "Sandbox.Timedout", payload
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    error, payload, _ = functions("linger", {"linger": False})
    assert (error, payload) == (None, "prompt")


def test_an_import_error_is_the_runtime_s(functions):
    error, payload, _ = functions("missing", {})
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError", payload
    assert "missing_module" in payload["errorMessage"]


def test_a_function_sees_its_code_and_the_runtime_s_boto3_only(functions):
    error, payload, _ = functions("environment", {"modules": ["handlers", "boto3", "pydantic", "chalice", "pytest"]})
    assert error is None, payload
    assert payload["first_path"] == payload["task_root"]
    assert payload["found"] == {"handlers": True, "boto3": True, "pydantic": False, "chalice": False, "pytest": False}
