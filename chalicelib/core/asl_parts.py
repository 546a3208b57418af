"""Building blocks of compiled states: the Lambda integrations, the transient-error retrier every Lambda
state carries, and the fixed key and state order that keeps committed state machines stable to read."""

from __future__ import annotations

from typing import Any

# Callbacks need the lambda:invoke integration (only it waits for a task token); machine steps name the
# step runner's ARN as their Resource, which spares every state the FunctionName/Payload envelope.
LAMBDA_CALLBACK = "arn:aws:states:::lambda:invoke.waitForTaskToken"
# AWS's recommended retry for transient Lambda service errors, separate from the step's own policy.
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]


def lambda_reads(state: dict[str, Any]) -> bool:
    """Whether a Lambda is the first to read `state`'s input steps (a Task, or a Parallel each of whose
    branches starts with one); a Wait, say, would hand them on as they are."""
    if state["Type"] == "Parallel":
        return all(lambda_reads(b["States"][b["StartAt"]]) for b in state["Branches"])
    return state["Type"] == "Task"


def reading_order(states: dict[str, Any]) -> dict[str, Any]:
    # States are emitted from the end backwards; reversed, a scope reads from its start down.
    return dict(reversed(states.items()))


def _service_retry() -> dict[str, Any]:
    # IntervalSeconds 1, MaxAttempts 3 and BackoffRate 2.0 are the ASL defaults: left out, they cost no bytes
    # in each of the states that repeat this retrier.
    return {"ErrorEquals": list(LAMBDA_SERVICE_ERRORS)}


# One shared, never-mutated retrier: the output is data to serialise, so sharing it is safe and cheap.
SERVICE_RETRY = _service_retry()


def ordered(state: dict[str, Any]) -> dict[str, Any]:
    # A fixed key order keeps the JSON of committed state machines readable and stable.
    keys = ["Type", "Resource", "Parameters", "TimeoutSeconds", "HeartbeatSeconds", "Retry", "Catch",
            "OutputPath", "Next", "End"]
    return {k: state[k] for k in keys if k in state} | {k: v for k, v in state.items() if k not in keys}
