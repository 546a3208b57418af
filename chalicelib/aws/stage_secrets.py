"""The stage's own secrets (JWT key, server secret, webhook signing secret) read from Secrets Manager by ARN.

A deployed function gets `STEPFLOW_<NAME>_ARN`, never the value: this adapter reads each secret once per
cold start and hands the values to chalicelib.config as `STEPFLOW_<NAME>` (config stays a pure reading of
values). A value is kept for `refresh_seconds`; the first use after that reads it again, so a rotation
reaches every warm function within that bound. A secret that cannot be read at cold start stops the
function (StageSecretError, naming the variable and AWS's error code, never a value); one that cannot be
re-read later keeps the value it had and is tried again after the next interval, so a passing Secrets
Manager outage does not take the API down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

# The variables chalicelib.config reads, each of which may instead be given as <variable>_ARN.
SECRET_VARIABLES = ("STEPFLOW_JWT_SECRET", "STEPFLOW_SERVER_SECRET", "STEPFLOW_WEBHOOK_SECRET")
ARN_SUFFIX = "_ARN"
REFRESH_SECONDS = 300.0
REFRESH_ENV = "STEPFLOW_SECRETS_REFRESH_SECONDS"

LOG = logging.getLogger("stepflow.secrets")


class StageSecretError(RuntimeError):
    """A secret the function is configured with cannot be read: the function refuses to start."""


def arn_variables(env: Mapping[str, str]) -> dict[str, str]:
    """Value variable -> secret ARN, for each secret given by ARN in `env` (an empty ARN counts as none)."""
    return {name: env[name + ARN_SUFFIX] for name in SECRET_VARIABLES if env.get(name + ARN_SUFFIX)}


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) or type(exc).__name__


class StageSecrets:
    """Reads and caches the secrets named by `arns` (value variable -> ARN)."""

    def __init__(self, arns: Mapping[str, str], client: Callable[[], Any], *,
                 refresh_seconds: float = REFRESH_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._arns = dict(arns)
        self._client = client  # called once, on the first read: no boto3 import for a stage without secrets
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}
        self._read_at: float | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], region: str) -> StageSecrets | None:
        """The stage's secrets when `env` names any by ARN; None for a stage given values (the local one)."""
        arns = arn_variables(env)
        if not arns:
            return None

        def secretsmanager() -> Any:
            from chalicelib.aws.clients import client

            return client("secretsmanager", region)

        return cls(arns, secretsmanager, refresh_seconds=float(env.get(REFRESH_ENV) or REFRESH_SECONDS))

    def values(self) -> dict[str, str]:
        """Variable -> current value; reads every secret at the first call (raising StageSecretError)."""
        with self._lock:
            if self._read_at is None:
                self._values = self._read_all()
                self._read_at = self._clock()
            return dict(self._values)

    def refresh(self) -> bool:
        """Re-reads the secrets when their interval has passed; True when a value changed."""
        with self._lock:
            if self._read_at is None or self._clock() - self._read_at < self._refresh_seconds:
                return False
            self._read_at = self._clock()
            try:
                fresh = self._read_all()
            except StageSecretError as exc:
                LOG.warning("stage secrets not refreshed, the values read before stay in use: %s", exc)
                return False
            changed = fresh != self._values
            self._values = fresh
            return changed

    def _read_all(self) -> dict[str, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        sm = self._client()
        found: dict[str, str] = {}
        for variable, arn in self._arns.items():
            try:
                answer = sm.get_secret_value(SecretId=arn)
            except (ClientError, BotoCoreError) as exc:
                raise StageSecretError(f"cannot read {variable}{ARN_SUFFIX} ({arn}): {_code(exc)}") from None
            value = answer.get("SecretString")
            if not isinstance(value, str) or not value:
                raise StageSecretError(f"{variable}{ARN_SUFFIX} ({arn}) holds no text value")
            found[variable] = value
        return found
