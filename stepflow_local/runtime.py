"""LocalRuntime: moto's Step Functions, Lambda, DynamoDB, SQS and EventBridge in this process, provisioned from chalicelib.resources."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from stepflow_local import moto_executions, moto_patches
from stepflow_local.scheduler import ScheduledJob, Scheduler

LOG = logging.getLogger("stepflow_local")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REGION = "us-east-1"
# Only exported when absent: botocore must find *some* credentials before moto's mock replaces them.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
MIN_POLL_SECONDS = 0.05  # faster DescribeExecution polling starves the interpreter threads on 2 cores
LAMBDA_RUNTIME = "python3.12"
SHUTDOWN_ERROR = "Stepflow.LocalRuntimeShutdown"
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    # The Docker-backed Lambda backend is the one whose _invoke_lambda is patched to run in-process;
    # use_docker=False would select moto's echo-only backend.
    "lambda": {"use_docker": True},
}


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "stepflow_local runs this function's Handler in-process; no code is uploaded.\n")
    return buffer.getvalue()


_DUMMY_ZIP = _dummy_zip()


class LocalRuntime:
    """Context manager: an emulated AWS account with Stepflow's tables, Lambda functions and role.

    On enter it applies moto_patches, starts moto.mock_aws with Step Functions execution on, creates
    every table and function from chalicelib.resources, exports the env vars chalicelib.config reads,
    runs the on_ready callbacks and starts the scheduler. On exit it stops the scheduler, stops every
    RUNNING execution, waits for the interpreter threads, stops the mock and restores the environment.
    Only one LocalRuntime can be active per process (moto's mock is process-wide).
    """

    _active: ClassVar[LocalRuntime | None] = None
    _active_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        stage: str = "local",
        prefix: str | None = None,
        region: str | None = None,
        tables: Iterable[Any] | None = None,
        functions: Iterable[Any] | None = None,
        time_scale: float | None = None,
        code_root: str | os.PathLike[str] | None = PROJECT_ROOT,
        lambda_timeout: int = 60,
        lambda_memory_mb: int = 256,
        shutdown_grace: float = 3.0,
        data_dir: str | os.PathLike[str] | None = None,
    ):
        from chalicelib import resources

        self.stage = stage
        self.prefix = prefix if prefix is not None else f"stepflow-{stage}-"
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        self.tables = tuple(resources.TABLES if tables is None else tables)
        self.functions = tuple(resources.FUNCTIONS if functions is None else functions)
        self.time_scale = time_scale
        self.code_root = str(code_root) if code_root is not None else None
        self.lambda_timeout = lambda_timeout
        self.lambda_memory_mb = lambda_memory_mb
        self.shutdown_grace = shutdown_grace
        # With a data directory, DynamoDB is DynamoDB Local on disk there (stepflow_local/durable.py);
        # without one, moto's, in memory. Everything else is moto either way.
        self.store: Any = None
        if data_dir is not None:
            from stepflow_local.durable import DurableStore

            self.store = DurableStore(data_dir)

        self.account_id = ""
        self.table_names: dict[str, str] = {}  # Table.name -> physical table name
        self.stream_arns: dict[str, str] = {}  # Table.name -> its stream's ARN (tables with a stream)
        self.function_names: dict[str, str] = {}  # Function.name -> physical function name
        self.function_arns: dict[str, str] = {}  # Function.name -> function ARN
        self.state_machine_role_arn = ""
        self.lambda_role_arn = ""
        self.env: dict[str, str] = {}  # what this runtime exported (besides fake credentials)

        # Scheduled callbacks and reset() never overlap: a sweep must not see half-provisioned resources.
        self._busy = threading.RLock()
        self.scheduler = Scheduler(guard=self._busy)
        self._ready_callbacks: list[Callable[[LocalRuntime], Any]] = []
        self._clients: dict[str, Any] = {}
        self._saved_env: dict[str, str | None] = {}
        self._added_sys_path = False
        self._mock: Any = None
        self._started = False
        # ARNs of executions that started or ended since the last execution_changes() (insertion-ordered).
        self._changes: dict[str, None] = {}
        self._changes_lock = threading.Lock()

    # ------------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def started(self) -> bool:
        return self._started

    @property
    def durable(self) -> bool:
        """Whether DynamoDB keeps its data across restarts (a data directory was given)."""
        return self.store is not None

    @classmethod
    def active(cls) -> LocalRuntime | None:
        """The runtime started in this process, if any."""
        return cls._active

    def start(self) -> LocalRuntime:
        with LocalRuntime._active_lock:
            if LocalRuntime._active is not None:
                raise RuntimeError("a LocalRuntime is already active in this process (moto's mock is process-wide)")
            LocalRuntime._active = self
        try:
            self._start()
        except BaseException:
            self._teardown()
            raise
        return self

    def _start(self) -> None:
        if self.store is not None:
            self.store.start()  # first: the JVM starts while moto and the app load; provisioning waits for it
        import moto

        moto_patches.apply()
        moto_patches.interrupt_sleeps(False)
        moto_executions.add_listener(self.note_execution)
        if self.time_scale is not None:
            moto_patches.set_time_scale(self.time_scale)
        for name, value in FAKE_CREDENTIALS.items():
            if not os.environ.get(name):
                self._export(name, value)
        self._export("AWS_DEFAULT_REGION", self.region)
        self._export("AWS_REGION", self.region)
        # No X-Ray daemon here: the handlers' tracer stays off and the X-Ray SDK unloaded (observability.py).
        self._export("POWERTOOLS_TRACE_DISABLED", "true")
        if self.store is not None:
            for name, value in self.store.env().items():
                self._export(name, value)
        if self.code_root and self.code_root not in sys.path:
            # Lambda imports the Handler's module from the code root (/var/task); here, the project root.
            sys.path.insert(0, self.code_root)
            self._added_sys_path = True
        self._forget_app_clients()

        self._mock = moto.mock_aws(config=MOTO_CONFIG)  # type: ignore[call-overload]
        self._mock.start()
        self._started = True
        if not moto_patches.step_functions_execution_enabled():
            raise RuntimeError("moto did not take the execute_state_machine config; state machines would not run")
        self._provision()
        self._run_ready_callbacks(self._ready_callbacks)
        self.scheduler.start()

    def stop(self) -> None:
        """Stops everything this runtime started; safe to call twice."""
        if LocalRuntime._active is not self:
            return
        self._teardown()

    def _teardown(self) -> None:
        moto_executions.remove_listener(self.note_execution)
        try:
            self.scheduler.stop()
            if self._started:
                try:
                    self.stop_running_executions()
                except Exception:  # shutting down anyway; the mock stop below must still happen
                    LOG.exception("could not stop running executions")
                moto_patches.interrupt_sleeps(True)  # wake Retry back-offs so their threads can finish
                leftover = self.wait_for_interpreter_threads(self.shutdown_grace)
                if leftover:
                    LOG.warning("%d Step Functions interpreter thread(s) still alive at shutdown: %s",
                                len(leftover), ", ".join(t.name for t in leftover))
                _prune_interpreter_threads()
        finally:
            if self._mock is not None:
                self._mock.stop()
                self._mock = None
            if self.store is not None:
                self.store.stop()  # last: the executions stopped above may still have been writing
            self._started = False
            self._clients.clear()
            self._forget_app_clients()
            self._restore_env()
            if self._added_sys_path and self.code_root in sys.path:
                sys.path.remove(self.code_root)
            self._added_sys_path = False
            if self.time_scale is not None:
                moto_patches.set_time_scale(None)
            moto_patches.interrupt_sleeps(False)  # the patches stay process-wide; leave them neutral
            with LocalRuntime._active_lock:
                if LocalRuntime._active is self:
                    LocalRuntime._active = None

    def reset(self) -> None:
        """Forgets all AWS state (executions, items, queues...), re-provisions and re-runs on_ready callbacks."""
        from moto.core.base_backend import BackendDict

        self._require_started()
        with self._busy:
            self.stop_running_executions()
            moto_patches.interrupt_sleeps(True)
            try:
                self.wait_for_interpreter_threads(self.shutdown_grace)
            finally:
                moto_patches.interrupt_sleeps(False)
            _prune_interpreter_threads()
            BackendDict.reset()
            if self.store is not None:
                from stepflow_local.kept_secrets import FILE, KeptSecrets

                self.store.drop_tables(self.client("dynamodb"), self.table_names.values())
                KeptSecrets(self.store.data_dir / FILE).forget()
            self.execution_changes()  # what changed before the reset no longer exists
            self._provision()
            self._run_ready_callbacks(self._ready_callbacks)

    # ------------------------------------------------------------------------------------- hooks

    def on_ready(self, callback: Callable[[LocalRuntime], Any]) -> Callable[[LocalRuntime], Any]:
        """Registers callback(runtime), run after provisioning and after every reset(); now too if started."""
        self._ready_callbacks.append(callback)
        if self._started:
            self._run_ready_callbacks([callback])
        return callback

    def every(self, seconds: float, callback: Callable[[], Any], *, name: str | None = None,
              run_now: bool = False) -> ScheduledJob:
        """Runs callback() every `seconds` on the scheduler's daemon thread while the runtime is up."""
        return self.scheduler.every(seconds, callback, name=name, run_now=run_now)

    def _run_ready_callbacks(self, callbacks: Iterable[Callable[[LocalRuntime], Any]]) -> None:
        for callback in callbacks:
            callback(self)

    # ------------------------------------------------------------------------------------- access

    def client(self, service: str) -> Any:
        """A boto3 client for the emulated account (cached per runtime)."""
        self._require_started()
        client = self._clients.get(service)
        if client is None:
            with _SESSION_LOCK:  # boto3 sessions are not thread-safe
                client = _session().client(service, region_name=self.region)
            self._clients[service] = client
        return client

    def settings(self) -> Any:
        """chalicelib.config.Settings as the app will read them from the exported environment."""
        from chalicelib.config import Settings

        return Settings.from_env()

    # --------------------------------------------------------------------------------- executions

    def wait_for_execution(self, execution_arn: str, timeout: float = 30.0,
                           poll_interval: float = MIN_POLL_SECONDS) -> dict[str, Any]:
        """Polls DescribeExecution until the execution leaves RUNNING; raises TimeoutError after `timeout`."""
        sfn = self.client("stepfunctions")
        poll_interval = max(poll_interval, MIN_POLL_SECONDS)
        deadline = time.monotonic() + timeout
        while True:
            description = sfn.describe_execution(executionArn=execution_arn)
            if description["status"] != "RUNNING":
                return description
            if time.monotonic() >= deadline:
                raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout}s")
            time.sleep(poll_interval)

    def note_execution(self, execution_arn: str) -> None:
        with self._changes_lock:
            self._changes[execution_arn] = None

    def execution_changes(self) -> list[str]:
        """ARNs of the executions that started or ended since the last call (each once), oldest first."""
        with self._changes_lock:
            changed, self._changes = list(self._changes), {}
        return changed

    def running_executions(self) -> list[str]:
        if "moto.stepfunctions.parser.models" not in sys.modules:
            # Nothing ever called Step Functions (its backend loads on first use, ~1.5 s): nothing runs.
            return []
        sfn = self.client("stepfunctions")
        arns: list[str] = []
        for page in sfn.get_paginator("list_state_machines").paginate():
            for machine in page["stateMachines"]:
                pages = sfn.get_paginator("list_executions").paginate(
                    stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")
                arns += [e["executionArn"] for p in pages for e in p["executions"]]
        return arns

    def stop_running_executions(self, cause: str = "local runtime stopped") -> list[str]:
        """StopExecution on every RUNNING execution; returns their ARNs."""
        from botocore.exceptions import ClientError

        sfn = self.client("stepfunctions")
        stopped = []
        for arn in self.running_executions():
            try:
                sfn.stop_execution(executionArn=arn, error=SHUTDOWN_ERROR, cause=cause)
                stopped.append(arn)
            except ClientError as exc:  # it may have finished meanwhile
                LOG.debug("stop_execution %s: %s", arn, exc)
        return stopped

    @staticmethod
    def interpreter_threads() -> list[threading.Thread]:
        """The live threads moto's Step Functions interpreter started (executions, branches, callbacks)."""
        if "moto.stepfunctions.parser.utils" not in sys.modules:
            return []
        from moto.stepfunctions.parser.utils import TMP_THREADS

        return [t for t in list(TMP_THREADS) if t.is_alive()]

    def wait_for_interpreter_threads(self, timeout: float) -> list[threading.Thread]:
        """Joins the interpreter threads until `timeout`; returns those still alive."""
        deadline = time.monotonic() + timeout
        while True:
            alive = [t for t in self.interpreter_threads() if t is not threading.current_thread()]
            remaining = deadline - time.monotonic()
            if not alive or remaining <= 0:
                return alive
            alive[0].join(min(remaining, 0.1))

    # --------------------------------------------------------------------------------- provisioning

    def _provision(self) -> None:
        self.account_id = self.client("sts").get_caller_identity()["Account"]
        self._create_roles()
        self._create_tables()
        self.function_names = {fn.name: f"{self.prefix}{fn.name}" for fn in self.functions}
        self.function_arns = {
            fn.name: f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_names[fn.name]}"
            for fn in self.functions
        }
        app_env = self._app_env()
        for name, value in app_env.items():
            self._export(name, value)
        self._create_functions(app_env)
        self._keep_secrets()

    def _keep_secrets(self) -> None:
        """With a data directory, the credentials (Secrets Manager's secrets) are kept there too."""
        if self.store is None:
            return
        from moto.secretsmanager.models import secretsmanager_backends

        from stepflow_local.kept_secrets import FILE, KeptSecrets

        backend = secretsmanager_backends[self.account_id][self.region]
        kept = KeptSecrets(self.store.data_dir / FILE)
        kept.restore(self.client("secretsmanager"), backend)
        kept.watch(backend)

    def _app_env(self) -> dict[str, str]:
        env = {
            "STEPFLOW_STAGE": self.stage,
            "STEPFLOW_RESOURCE_PREFIX": self.prefix,
            "STEPFLOW_STATE_MACHINE_ROLE_ARN": self.state_machine_role_arn,
            "STEPFLOW_LOCAL_RUNTIME": "1",
        }
        for table in self.tables:
            if table.env_var:
                env[table.env_var] = self.table_names[table.name]
            if table.stream_env_var:
                env[table.stream_env_var] = self.stream_arns[table.name]
        for fn in self.functions:
            if fn.env_var:
                env[fn.env_var] = self.function_arns[fn.name]
        return env

    def _create_roles(self) -> None:
        iam = self.client("iam")

        def role(name: str, service: str) -> str:
            trust = {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
            return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

        self.state_machine_role_arn = role(f"{self.prefix}states", "states.amazonaws.com")
        self.lambda_role_arn = role(f"{self.prefix}lambda", "lambda.amazonaws.com")

    def _create_tables(self) -> None:
        ddb = self.client("dynamodb")
        self.table_names, self.stream_arns = {}, {}
        if self.store is not None:
            self.table_names, self.stream_arns = self.store.ensure_tables(ddb, self.tables, self.prefix)
            return
        for table in self.tables:
            name = table.physical_name(self.prefix)
            created = ddb.create_table(**table.create_table_request(name))["TableDescription"]
            if created.get("LatestStreamArn"):
                self.stream_arns[table.name] = created["LatestStreamArn"]
            if table.ttl_attribute:
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                    "Enabled": True, "AttributeName": table.ttl_attribute})
            self.table_names[table.name] = name

    def _create_functions(self, app_env: dict[str, str]) -> None:
        for fn in self.functions:
            self._create_function(fn, app_env)

    def _create_function(self, fn: Any, app_env: dict[str, str]) -> None:
        created = self.client("lambda").create_function(
            FunctionName=self.function_names[fn.name],
            Runtime=LAMBDA_RUNTIME,
            Role=self.lambda_role_arn,
            Handler=fn.handler,
            Code={"ZipFile": _DUMMY_ZIP},
            Timeout=self.lambda_timeout,
            MemorySize=self.lambda_memory_mb,
            # Informational: handlers run in this process and read os.environ, which holds the same values.
            Environment={"Variables": app_env},
        )
        if created["FunctionArn"] != self.function_arns[fn.name]:
            raise RuntimeError(f"unexpected function ARN {created['FunctionArn']}")

    def add_function(self, name: str, handler: str, *, env_var: str = "") -> str:
        """Creates one more in-process Lambda function (kept across reset()); returns its ARN."""
        from chalicelib.resources import Function

        self._require_started()
        if name in self.function_names:
            raise ValueError(f"function '{name}' already exists")
        fn = Function(name, handler, env_var, "")
        self.functions += (fn,)
        self.function_names[name] = f"{self.prefix}{name}"
        self.function_arns[name] = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.prefix}{name}"
        if env_var:
            self._export(env_var, self.function_arns[name])
        self._create_function(fn, self._app_env())
        return self.function_arns[name]

    # ----------------------------------------------------------------------------------- helpers

    def _export(self, name: str, value: str) -> None:
        if name not in self._saved_env:
            self._saved_env[name] = os.environ.get(name)
        os.environ[name] = value
        if not name.startswith("AWS_"):
            self.env[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    @staticmethod
    def _forget_app_clients() -> None:
        # The app caches boto3 clients per process; clients made for one runtime must not outlive it.
        clients = sys.modules.get("chalicelib.aws.clients")
        reset = getattr(clients, "reset_clients", None)
        if callable(reset):
            reset()

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("the LocalRuntime is not started")


_SESSION_LOCK = threading.Lock()
_SESSION: Any = None


def _session() -> Any:
    # One boto3 session per process: a fresh one re-reads botocore's endpoint and model files (~0.25 s
    # per client). Credentials are moto's fake ones while a runtime is up, the same every time.
    global _SESSION
    if _SESSION is None:
        import boto3

        _SESSION = boto3.session.Session()
    return _SESSION


def _prune_interpreter_threads() -> None:
    # moto appends every interpreter thread to a module-level list and never removes them.
    if "moto.stepfunctions.parser.utils" not in sys.modules:
        return
    from moto.stepfunctions.parser.utils import TMP_THREADS

    for thread in [t for t in list(TMP_THREADS) if not t.is_alive()]:
        try:
            TMP_THREADS.remove(thread)
        except ValueError:
            pass
