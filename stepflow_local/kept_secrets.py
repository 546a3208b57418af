"""Secrets Manager's secrets (the credentials) kept in a local service's data directory.

moto keeps secrets in memory only, so a service on a kept store lost every credential at a restart while
the definitions that name them stayed. With a data directory the runtime writes the account's secrets to
`<dir>/secrets.json` after each change (mode 0600, written whole to a temporary file and renamed over, so
a crash leaves the old file or the new one) and creates them again when it starts, keeping their creation
dates. Values are kept as they are, not encrypted: the directory is the user's own, as is everything else
in it. Nothing here prints or logs a value.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG = logging.getLogger("stepflow_local")
FILE = "secrets.json"
# The backend calls that change a secret: after each one that succeeds, the file is written again.
CHANGES = ("create_secret", "put_secret_value", "update_secret", "delete_secret", "restore_secret",
           "tag_resource", "untag_resource")


class KeptSecrets:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def restore(self, client: Any, backend: Any) -> int:
        """Creates the kept secrets in the (empty) emulated account; how many."""
        kept = self._read()
        for entry in kept:
            tags = [{"Key": k, "Value": v} for k, v in (entry.get("tags") or {}).items()]
            client.create_secret(Name=entry["name"], SecretString=entry["value"],
                                 Description=entry.get("description") or "", **({"Tags": tags} if tags else {}))
            secret = backend.secrets[entry["name"]]
            for attribute in ("created_date", "last_changed_date"):
                if entry.get(attribute) is not None:
                    setattr(secret, attribute, entry[attribute])
        return len(kept)

    def watch(self, backend: Any) -> None:
        """Writes the file again after each change of this backend's secrets."""
        for name in CHANGES:
            original = getattr(backend, name)
            if getattr(original, "__stepflow_kept__", False):
                continue
            setattr(backend, name, self._saving(backend, original))

    def forget(self) -> None:
        """The runtime's reset: nothing is kept any more."""
        with self._lock, contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _saving(self, backend: Any, original: Any) -> Any:
        @functools.wraps(original)
        def changed(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            try:
                self.save(backend)
            except OSError:
                # The change stands in memory; only a restart would lose it. The error names the file only.
                LOG.warning("could not keep the credentials in %s", self.path)
            return result

        changed.__stepflow_kept__ = True  # type: ignore[attr-defined]
        return changed

    def save(self, backend: Any) -> None:
        with self._lock:
            entries = [_entry(secret) for secret in list(backend.secrets.values())
                       if not getattr(secret, "deleted_date", None) and _current(secret) is not None]
            temporary = self.path.with_name(self.path.name + ".tmp")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump({"secrets": entries}, handle)
            os.replace(temporary, self.path)

    def _read(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        try:
            entries = json.loads(text).get("secrets") or []
        except (ValueError, AttributeError):
            # Not quoted: the file holds values. The user can remove it (the credentials are then gone).
            LOG.warning("the kept credentials in %s cannot be read; starting without them", self.path)
            return []
        return [e for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)
                and isinstance(e.get("value"), str)]


def _current(secret: Any) -> str | None:
    """The value GetSecretValue answers (AWSCURRENT): a PutSecretValue adds a version and leaves the
    secret's own secret_string at the first value."""
    version = (getattr(secret, "versions", None) or {}).get(getattr(secret, "default_version_id", None)) or {}
    value = version.get("secret_string", secret.secret_string)
    return value if isinstance(value, str) else None


def _entry(secret: Any) -> dict[str, Any]:
    tags = {t["Key"]: t["Value"] for t in (secret.tags or []) if isinstance(t, dict) and "Key" in t}
    return {"name": secret.name, "value": _current(secret), "description": secret.description,
            "tags": tags, "created_date": _number(secret.created_date),
            "last_changed_date": _number(secret.last_changed_date)}


def _number(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).timestamp()
    return value if isinstance(value, (int, float)) else None
