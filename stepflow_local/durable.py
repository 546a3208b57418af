"""The local service's data directory: DynamoDB Local on `<dir>/dynamodb` as the runtime's DynamoDB, one
server per directory (a lock), and no DynamoDB Local of an earlier, crashed server left holding it."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from stepflow_local.dynamodb_local import DynamoDBLocalProcess, ensure_tables

try:
    import fcntl
except ImportError:  # not on Windows: one server per directory is then up to the user
    fcntl = None  # type: ignore[assignment]

LOG = logging.getLogger("stepflow_local")

DEFAULT_DATA_DIR = ".stepflow"
DATA_DIR_ENV = "STEPFLOW_DATA_DIR"
LOCK_FILE = "server.lock"
PID_FILE = "dynamodb.pid"
LOG_FILE = "dynamodb.log"
DATABASE_DIR = "dynamodb"
# Service clients find DynamoDB (and its streams, which DynamoDB Local serves on the same port) here.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS")


class DataDirectoryInUse(RuntimeError):
    """Another server holds the data directory."""


class DurableStore:
    """DynamoDB for a LocalRuntime that keeps its data: start() locks the directory and starts DynamoDB
    Local (returning at once), ensure_tables() waits for it and provisions, stop() stops it last."""

    def __init__(self, data_dir: str | os.PathLike[str]):
        self.data_dir = Path(data_dir).resolve()
        self.dynamodb = DynamoDBLocalProcess(self.data_dir / DATABASE_DIR, self.data_dir / LOG_FILE)
        self._lock: IO[str] | None = None

    @property
    def endpoint(self) -> str:
        return self.dynamodb.endpoint

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            _stop_leftover(self.data_dir / PID_FILE, self.data_dir / DATABASE_DIR)
            self.dynamodb.start()
            (self.data_dir / PID_FILE).write_text(f"{self.dynamodb.pid}\n")
        except BaseException:
            self.stop()
            raise

    def env(self) -> dict[str, str]:
        return dict.fromkeys(ENDPOINT_VARIABLES, self.endpoint)

    def ensure_tables(self, client: Any, tables: Iterable[Any], prefix: str) -> tuple[dict[str, str], dict[str, str]]:
        """Waits for DynamoDB Local, creates the missing tables (upgrading kept ones): (logical -> physical
        name, logical -> stream ARN of the tables that declare a stream)."""
        self.dynamodb.wait_ready()
        (self.data_dir / PID_FILE).write_text(f"{self.dynamodb.pid}\n")  # again: a taken port means a new process
        names = {table.name: table.physical_name(prefix) for table in tables}
        requests = [table.create_table_request(names[table.name]) for table in tables]
        ttl = {names[t.name]: t.ttl_attribute for t in tables if t.ttl_attribute}
        created = ensure_tables(client, requests, ttl)
        if created and len(created) < len(requests):
            LOG.info("created tables %s beside the kept ones", ", ".join(created))
        streams = {}
        for table in tables:
            if table.create_table_request(names[table.name]).get("StreamSpecification"):
                arn = client.describe_table(TableName=names[table.name])["Table"].get("LatestStreamArn")
                if arn:
                    streams[table.name] = arn
        return names, streams

    def drop_tables(self, client: Any, names: Iterable[str]) -> None:
        """Deletes the tables (LocalRuntime.reset: forget everything, as the in-memory runtime does)."""
        for name in names:
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                client.delete_table(TableName=name)

    def stop(self) -> None:
        self.dynamodb.stop()
        with contextlib.suppress(OSError):
            (self.data_dir / PID_FILE).unlink()
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None

    def _take_lock(self) -> None:
        lock = open(self.data_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held open while the server runs
        if fcntl is not None:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.seek(0)
                holder = lock.read().strip() or "unknown"
                lock.close()
                raise DataDirectoryInUse(f"the data directory {self.data_dir} is in use by another Stepflow "
                                         f"server (pid {holder}); stop it, or use another --data-dir") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock


def _stop_leftover(pid_file: Path, database: Path, timeout: float = 10.0) -> None:
    """A DynamoDB Local a crashed server left running on this database (where its parent's death did not
    take it along) is stopped before another opens the same files."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return  # gone (or no /proc to tell whose it is: then it is left alone)
    if str(database).encode() not in command or not any(b"java" in part for part in command[:1]):
        return  # the pid was reused by something else
    LOG.warning("stopping DynamoDB Local (pid %d) left running by an earlier server", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # another process's exit: nothing to wait on but /proc
    if _running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def default_data_dir() -> str:
    return os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
