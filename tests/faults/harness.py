"""Fault injection for the local runtime: fails a seeded fraction of the AWS calls Stepflow makes, and
stops the "process" right after a chosen call, so tests can prove that every such fault converges.

Faults are botocore `before-call` hooks: the call never reaches the (emulated) service and raises what
a real failure raises once botocore's own retries are spent (a throttling/5xx ClientError or a lost
connection). They are registered on the clients the services use (chalicelib.aws.clients) and, for
Lambda, on boto3's default session, from which the Step Functions interpreter makes its Lambda clients,
so an invoke fails as `Lambda.<Code>` the way the state machine's retrier sees it on AWS.

A crash is an `after-call` hook raising Crash (a BaseException: no `except Exception` stops it) once the
chosen call has returned, in the thread that armed it: the call happened, nothing after it did.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.aws.clients import client

APP_SERVICES = ("dynamodb", "stepfunctions")
FAULT_CODES = (("ThrottlingException", 400), ("ServiceUnavailable", 503), ("InternalServerError", 500))
# Lambda's own failures (the state machine retries these); a handler's errors are not among them.
LAMBDA_CODES = (("ServiceException", 500), ("TooManyRequestsException", 429))


class Crash(BaseException):
    """The process stopped right after a call returned (raised in the thread that armed it)."""


class FaultInjector:
    def __init__(self, region: str, seed: int):
        self.region = region
        self.seed = seed
        self.rates: dict[str, float] = {}
        self.api_only = True  # app-client faults only in the test's own thread (the API and the sweep)
        self.calls: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.sent_success: Counter[str] = Counter()  # task token -> SendTaskSuccess calls that succeeded
        self._main = threading.current_thread()
        self._randoms: dict[str, random.Random] = {}
        self._crash: tuple[str, str, threading.Thread] | None = None
        self._lock = threading.Lock()
        self._attached: list[Any] = []

    # -- wiring --------------------------------------------------------------------------------
    def attach(self) -> FaultInjector:
        for service in APP_SERVICES:
            self._register(client(service, self.region).meta.events)
        session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
        self._register(session.events)
        # The interpreter's clients already made (shared for the process) copied the session's hooks when
        # they were made: they get these too. Those made from now on copy them from the session.
        from stepflow_local.moto_interpreter import shared_clients

        for made in shared_clients():
            self._register(made.meta.events)
        return self

    def _register(self, events: Any) -> None:
        events.register("before-parameter-build.sfn.SendTaskSuccess", _keep_token)
        events.register("before-call", self._before)
        events.register("after-call", self._after)
        self._attached.append(events)

    def detach(self) -> None:
        for events in self._attached:
            events.unregister("before-parameter-build.sfn.SendTaskSuccess", _keep_token)
            events.unregister("before-call", self._before)
            events.unregister("after-call", self._after)
        self._attached.clear()

    # -- control -------------------------------------------------------------------------------
    def fail(self, *, dynamodb: float = 0.0, stepfunctions: float = 0.0, lambda_: float = 0.0) -> None:
        """Fails this fraction of each service's calls from now on (0 everywhere: faults off)."""
        self.rates = {"dynamodb": dynamodb, "stepfunctions": stepfunctions, "lambda": lambda_}

    def off(self) -> None:
        self.fail()

    @contextmanager
    def crash_after(self, service: str, operation: str) -> Iterator[None]:
        """Within the block, the first `operation` call of `service` in this thread returns, then Crash."""
        self._crash = (service, operation, threading.current_thread())
        try:
            yield
        finally:
            self._crash = None

    # -- hooks ---------------------------------------------------------------------------------
    def _random(self, role: str) -> random.Random:
        # One sequence per kind of thread: the test's calls fail the same way on every run.
        with self._lock:
            if role not in self._randoms:
                self._randoms[role] = random.Random(f"{self.seed}/{role}")
            return self._randoms[role]

    def _before(self, model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        key = f"{service}.{model.name}"
        in_main = threading.current_thread() is self._main
        with self._lock:
            self.calls[key] += 1
        rate = self.rates.get(service, 0.0)
        if not rate or (service != "lambda" and self.api_only and not in_main):
            return
        if self._random("main" if in_main else "lambda").random() >= rate:
            return
        with self._lock:
            self.injected[key] += 1
        chooser = self._random("main" if in_main else "lambda")
        if service == "lambda":
            code, status = chooser.choice(LAMBDA_CODES)
        elif chooser.random() < 0.2:
            raise EndpointConnectionError(endpoint_url=f"https://{service}.{self.region}.amazonaws.com")
        else:
            code, status = chooser.choice(FAULT_CODES)
        raise ClientError({"Error": {"Code": code, "Message": "injected fault"},
                           "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "injected"}}, model.name)

    def _after(self, model: Any, http_response: Any = None, context: Any = None, **_: Any) -> None:
        if http_response is not None and http_response.status_code >= 300:
            return  # refused (a dead token, say): neither counted nor crashed after
        service = model.service_model.service_name
        if model.name == "SendTaskSuccess":
            with self._lock:
                self.sent_success[(context or {}).get("stepflow_token") or ""] += 1
        crash = self._crash
        if crash and crash[0] == service and crash[1] == model.name and threading.current_thread() is crash[2]:
            self._crash = None
            raise Crash(f"stopped right after {service}.{model.name}")


def _keep_token(params: Any, context: Any = None, **_: Any) -> None:
    """Keeps SendTaskSuccess's token in the call's context, where the after-call hook counts it."""
    if context is not None:
        context["stepflow_token"] = params.get("taskToken")
