"""The `process` runtime executor: a Lambda execution environment is a local Python process.

LocalStack's own (docker) executor starts a container whose init serves POST /invoke and reports back
to /_localstack_lambda/<id>/...; this one starts bootstrap.py under the function's Python with the same
environment and speaks the same protocol, so LocalStack's invocation machinery (ExecutorEndpoint:
readiness, response, error, logs, its timeouts and environment reuse) runs unchanged. Zip functions of
Python runtimes only: that is what Stepflow deploys.

Settings, in the environment of the LocalStack process:
  STEPFLOW_LAMBDA_PYTHONS           python3.12=/path/to/python[,python3.13=...]: an interpreter per runtime
  STEPFLOW_LAMBDA_RUNTIME_PACKAGES  a folder put on every function's sys.path after its code: what the
                                    Lambda runtime itself provides (boto3)
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
from pathlib import Path

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint, StatusErrorException
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor
from localstack.utils.net import get_free_tcp_port

from stepflow_lambda_executor.bootstrap import INTERPRETER_FLAGS

LOG = logging.getLogger(__name__)
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
STOP_GRACE_SECONDS = 5
LOG_TAIL_BYTES = 64 * 1024


def interpreters() -> dict[str, str]:
    """Runtime name -> interpreter path, from STEPFLOW_LAMBDA_PYTHONS."""
    found = {}
    for item in os.environ.get("STEPFLOW_LAMBDA_PYTHONS", "").split(","):
        runtime, _, path = item.partition("=")
        if runtime.strip() and path.strip():
            found[runtime.strip()] = path.strip()
    return found


def interpreter_for(function_version: FunctionVersion) -> str:
    runtime = function_version.config.runtime or ""
    python = interpreters().get(runtime)
    if python is None or not os.access(python, os.X_OK):
        raise LambdaRuntimeException(
            f"the process executor has no interpreter for runtime {runtime!r} "
            f"(STEPFLOW_LAMBDA_PYTHONS knows {sorted(interpreters()) or 'none'})")
    return python


class ProcessRuntimeExecutor(RuntimeExecutor):
    process: subprocess.Popen | None

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = ExecutorEndpoint(id, container_address=self.get_endpoint_from_executor())
        self.process = None
        self.stopping = False
        self.request_id = ""
        self.log_path = Path(config.dirs.tmp) / "lambda-process" / f"{function_version.id.function_name}-{id}.log"

    def start(self, env_vars: dict[str, str]) -> None:
        python = interpreter_for(self.function_version)
        self.executor_endpoint.start()
        port = get_free_tcp_port()
        self.executor_endpoint.container_port = port
        code = self.function_version.config.code.get_unzipped_code_location()
        env = {key: str(value) for key, value in env_vars.items()}
        env.update({
            # The container paths LocalStack announces are this process's real folders here.
            "LAMBDA_TASK_ROOT": str(code),
            "LAMBDA_RUNTIME_DIR": os.environ.get("STEPFLOW_LAMBDA_RUNTIME_PACKAGES", ""),
            "STEPFLOW_EXECUTOR_PORT": str(port),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
        })
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # -I -S: nothing from the interpreter's own site-packages or PYTHON* variables; bootstrap.py
            # builds sys.path as Lambda does (code, runtime packages, standard library).
            self.process = subprocess.Popen(
                [python, *INTERPRETER_FLAGS, str(BOOTSTRAP)], env=env, cwd=code,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        threading.Thread(target=self._watch, args=(self.process,), daemon=True,
                         name=f"lambda-process-{self.id}").start()
        self.executor_endpoint.wait_for_startup()

    def _watch(self, process: subprocess.Popen) -> None:
        """Turns an environment that exits on its own into a failed start or a failed invocation: without
        this, LocalStack would wait for a report that never comes (up to its 900 s invocation limit)."""
        code = process.wait()
        if self.stopping:
            return
        message = f"Runtime exited with error: exit status {code}"
        payload = json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message}).encode()
        startup = self.executor_endpoint.startup_future
        if startup is not None and not startup.done():
            try:
                startup.set_exception(StatusErrorException(message, payload=payload))
            except Exception:  # noqa: BLE001 - the environment reported at the same moment
                pass
        invocation = self.executor_endpoint.invocation_future
        if invocation is not None and not invocation.done():
            try:
                invocation.set_result(InvocationResult(self.request_id, payload, is_error=True, logs=self.get_logs()))
            except Exception:  # noqa: BLE001
                pass

    def stop(self) -> None:
        self.stopping = True
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:  # noqa: BLE001 - never registered when the start failed early
            LOG.debug("Error while stopping executor endpoint for lambda %s: %s",
                      self.function_version.qualified_arn, e)

    def get_address(self) -> str:
        return self.get_endpoint_from_executor()

    def get_endpoint_from_executor(self) -> str:
        host = config.GATEWAY_LISTEN[0].host
        return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host

    def get_runtime_endpoint(self) -> str:
        return (f"http://{self.get_endpoint_from_executor()}:{config.GATEWAY_LISTEN[0].port}"
                f"{self.executor_endpoint.get_endpoint_prefix()}")

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        self.request_id = payload.get("invoke-id", "")
        return self.executor_endpoint.invoke(payload)

    def get_logs(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - LOG_TAIL_BYTES))
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        """At CreateFunction: refuse what cannot run here (the function becomes Failed, saying why), unzip."""
        if function_version.config.package_type != PackageType.Zip:
            raise LambdaRuntimeException("the process executor runs zip functions only, not container images")
        interpreter_for(function_version)
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # nothing beyond the unzipped code, which LocalStack removes itself

    @classmethod
    def validate_environment(cls) -> bool:
        if not interpreters():
            LOG.warning("LAMBDA_RUNTIME_EXECUTOR=process needs STEPFLOW_LAMBDA_PYTHONS=python3.12=/path/to/python")
            return False
        return True
