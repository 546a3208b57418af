"""Credentials in AWS Secrets Manager: one secret per credential, named <prefix><tenant or _>/<name>.

The secret holds the value; its description is the credential's description; tags carry who created it
and when its value was last rotated. Secrets Manager is the only store, so there is nothing to keep in
step with: a call that fails, or a process that dies after one, leaves either the old or the new state,
and the client's retry converges (a create that went through answers 409 on the retry; a rotation that
went through but died before its tag was written is rotated again by the retry, which writes the tag).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from chalicelib.errors import Conflict, NotFound

CREATED_BY_TAG = "stepflow:created-by"
ROTATED_AT_TAG = "stepflow:rotated-at"
SHARED = "_"  # the namespace of credentials without a tenant (authentication off, shared definitions)
# Tenant ids that are already valid secret-name segments are used as they are; any other is hex-encoded
# behind "_x" (no plain tenant id starts with "_", so the two never meet).
_PLAIN_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.@+=-]{0,99}$")
MAX_TAG_VALUE = 256


# botocore's DEBUG logging prints each request's and response's body, which for Secrets Manager holds
# the value: these two loggers get a filter that masks SecretString before a line is written.
_WIRE_LOGGERS = ("botocore.endpoint", "botocore.parsers")
_SECRET_STRING = re.compile(r"""(SecretString\\?["']?\s*[:=]\s*\\?)(["'])((?:\\.|(?!\2).)*)\2""")


class _MaskSecretStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is left to logging's own handling
            return True
        if "SecretString" in text:
            record.msg, record.args = _SECRET_STRING.sub(r"\1\2***\2", text), ()
        return True


def mask_wire_logs() -> None:
    for name in _WIRE_LOGGERS:
        wire = logging.getLogger(name)
        if not any(isinstance(f, _MaskSecretStrings) for f in wire.filters):
            wire.addFilter(_MaskSecretStrings())


def tenant_segment(tenant: str | None) -> str:
    if tenant is None:
        return SHARED
    if _PLAIN_TENANT.fullmatch(tenant):
        return tenant
    return "_x" + tenant.encode("utf-8").hex()


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value) if value else None


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class SecretStore:
    """Create, read (metadata, or the value for the step runner), rotate, list and delete credentials."""

    def __init__(self, client: Any, prefix: str):
        self._sm = client
        self._prefix = prefix
        mask_wire_logs()

    def namespace(self, tenant: str | None) -> str:
        return f"{self._prefix}{tenant_segment(tenant)}/"

    def secret_id(self, tenant: str | None, name: str) -> str:
        return self.namespace(tenant) + name

    def create(self, tenant: str | None, name: str, value: str, description: str, by: str | None,
               now: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        tags = [{"Key": ROTATED_AT_TAG, "Value": now}]
        if by:
            tags.append({"Key": CREATED_BY_TAG, "Value": by[:MAX_TAG_VALUE]})
        try:
            self._sm.create_secret(Name=self.secret_id(tenant, name), SecretString=value, Description=description,
                                   Tags=tags)
        except ClientError as exc:
            if _code(exc) == "ResourceExistsException":
                raise Conflict(f"a credential named '{name}' exists; PUT /credentials/{name} rotates it") from exc
            if _code(exc) == "InvalidRequestException":  # scheduled for deletion by an earlier version
                raise Conflict(f"a credential named '{name}' is being deleted; try again shortly") from exc
            raise
        return self.describe(tenant, name)

    def describe(self, tenant: str | None, name: str) -> dict[str, Any]:
        found = self.find(tenant, name)
        if found is None:
            raise NotFound(f"no credential named '{name}'")
        return found

    def find(self, tenant: str | None, name: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            secret = self._sm.describe_secret(SecretId=self.secret_id(tenant, name))
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        if secret.get("DeletedDate"):
            return None
        return self._metadata(secret)

    def _metadata(self, secret: dict[str, Any]) -> dict[str, Any]:
        tags = {t.get("Key"): t.get("Value") for t in secret.get("Tags") or []}
        return {
            "name": str(secret.get("Name", "")).rsplit("/", 1)[-1],
            "description": secret.get("Description") or "",
            "created_at": _iso(secret.get("CreatedDate")),
            "created_by": tags.get(CREATED_BY_TAG),
            "rotated_at": tags.get(ROTATED_AT_TAG),
        }

    def rotate(self, tenant: str | None, name: str, value: str | None, description: str | None,
               now: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        secret_id = self.secret_id(tenant, name)
        self.describe(tenant, name)  # 404 before anything changes
        try:
            if description is not None:
                self._sm.update_secret(SecretId=secret_id, Description=description)
            if value is not None:
                self._sm.put_secret_value(SecretId=secret_id, SecretString=value)
                self._sm.tag_resource(SecretId=secret_id, Tags=[{"Key": ROTATED_AT_TAG, "Value": now}])
        except ClientError as exc:
            if _code(exc) in ("ResourceNotFoundException", "InvalidRequestException"):
                raise NotFound(f"no credential named '{name}'") from exc  # deleted meanwhile
            raise
        return self.describe(tenant, name)

    def delete(self, tenant: str | None, name: str) -> None:
        from botocore.exceptions import ClientError

        self.describe(tenant, name)
        try:
            # Without a recovery window: the name is free again at once, and no run resolves it any more.
            self._sm.delete_secret(SecretId=self.secret_id(tenant, name), ForceDeleteWithoutRecovery=True)
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":  # gone already: the retry of a delete
                raise

    def page(self, tenant: str | None, limit: int, token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the tenant's credentials (ListSecrets with a name-prefix filter: never every secret)."""
        namespace = self.namespace(tenant)
        kwargs: dict[str, Any] = {"Filters": [{"Key": "name", "Values": [namespace]}], "MaxResults": limit}
        if token:
            kwargs["NextToken"] = token
        answer = self._sm.list_secrets(**kwargs)
        # The name filter is a case-insensitive prefix match: keep this namespace's own secrets only.
        items = [self._metadata(s) for s in answer.get("SecretList") or []
                 if str(s.get("Name", "")).startswith(namespace) and not s.get("DeletedDate")]
        return sorted(items, key=lambda item: item["name"]), answer.get("NextToken")

    def value(self, tenant: str | None, name: str) -> str | None:
        """The current value, for the step runner; None when there is no such credential."""
        from botocore.exceptions import ClientError

        try:
            answer = self._sm.get_secret_value(SecretId=self.secret_id(tenant, name))
        except ClientError as exc:
            if _code(exc) in ("ResourceNotFoundException", "InvalidRequestException"):
                return None
            raise
        found = answer.get("SecretString")
        return found if isinstance(found, str) else None
