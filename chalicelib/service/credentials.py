"""Credentials: a tenant's named secrets, written by editors, read back as metadata only, resolved by the
step runner at run time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from chalicelib.errors import InvalidInput, NotFound
from chalicelib.tasks.credentials import CREDENTIAL_MISSING, NAME_RE, value_problem
from chalicelib.tasks.errors import StepError

MAX_DESCRIPTION = 1000
MAX_LIMIT = 100
MAX_CURSOR = 4096
MAX_REFERENCED = 20  # distinct credentials one definition may name (each is looked up at registration)
FIELDS = {"name", "description", "value"}


class BadCursor(ValueError):
    """A listing cursor that is not one this service handed out (the API answers 400)."""


def _invalid(issues: list[dict[str, str]]) -> InvalidInput:
    return InvalidInput({"message": "the request body is not valid", "issues": issues})


def _issue(code: str, location: str, message: str) -> dict[str, str]:
    return {"code": code, "location": location, "message": message}


def name_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        return "a name starts with a letter, then letters, digits or '_', at most 64 characters"
    return None


def _description_problem(description: Any) -> str | None:
    if not isinstance(description, str):
        return "the description must be a string"
    if len(description) > MAX_DESCRIPTION:
        return f"the description must be at most {MAX_DESCRIPTION} characters"
    return None


def _check_body(body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid([_issue("invalid_type", "body", "the body must be a JSON object")])
    issues = [_issue("not_allowed", key, f"unknown field '{key}'" + ("; a credential's name is in the path"
                                                                         if key == "name" else ""))
              for key in sorted(set(body) - allowed)]
    return {"issues": issues}


class CredentialService:
    def __init__(self, store: Any, now: Callable[[], str]):
        self._store = store
        self._now = now

    def create(self, tenant: str | None, body: Any, by: str | None) -> dict[str, Any]:
        issues = _check_body(body, FIELDS)["issues"]
        name, value, description = body.get("name"), body.get("value"), body.get("description", "")
        problem = name_problem(name)
        if problem:
            issues.append(_issue("invalid_name", "name", problem))
        problem = value_problem(value) if "value" in body else "Field required"
        if problem:
            issues.append(_issue("invalid_value", "value", problem))
        problem = _description_problem(description)
        if problem:
            issues.append(_issue("invalid_description", "description", problem))
        if issues:
            raise _invalid(issues)
        return self._store.create(tenant, name, value, description, by, self._now())  # type: ignore[no-any-return]

    def get(self, tenant: str | None, name: str) -> dict[str, Any]:
        if name_problem(name):
            raise NotFound(f"no credential named '{name[:80]}'")
        return self._store.describe(tenant, name)  # type: ignore[no-any-return]

    def update(self, tenant: str | None, name: str, body: Any) -> dict[str, Any]:
        if name_problem(name):
            raise NotFound(f"no credential named '{name[:80]}'")
        issues = _check_body(body, {"description", "value"})["issues"]
        value, description = body.get("value"), body.get("description")
        if value is None and description is None and not issues:
            issues.append(_issue("missing", "value", "send a new value, a new description, or both"))
        if value is not None:
            problem = value_problem(value)
            if problem:
                issues.append(_issue("invalid_value", "value", problem))
        if description is not None:
            problem = _description_problem(description)
            if problem:
                issues.append(_issue("invalid_description", "description", problem))
        if issues:
            raise _invalid(issues)
        return self._store.rotate(tenant, name, value, description, self._now())  # type: ignore[no-any-return]

    def delete(self, tenant: str | None, name: str) -> dict[str, Any]:
        if name_problem(name):
            raise NotFound(f"no credential named '{name[:80]}'")
        self._store.delete(tenant, name)
        return {"name": name, "deleted": True}

    def page(self, tenant: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        if cursor is not None and (not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR):
            raise BadCursor("the cursor is not valid; start again without one")
        try:
            items, token = self._store.page(tenant, max(1, min(limit, MAX_LIMIT)), cursor)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if cursor and code in ("InvalidNextTokenException", "ValidationException", "InvalidParameterException"):
                raise BadCursor("the cursor is not valid; start again without one") from None
            raise
        return {"items": items, "next_cursor": token}

    # -- for definitions and the step runner ------------------------------------------------------

    def known(self, tenant: str | None, names: Iterable[str]) -> set[str]:
        """Which of `names` are the tenant's credentials (one DescribeSecret per name: exact, never a scan)."""
        wanted = sorted(set(names))
        if len(wanted) > MAX_REFERENCED:
            raise InvalidInput({"message": "the definition is not valid", "issues": [{
                "code": "too_many_credentials", "location": "steps", "hint": "",
                "message": f"the steps name {len(wanted)} credentials; at most {MAX_REFERENCED} are allowed"}]})
        return {name for name in wanted if self._store.find(tenant, name) is not None}

    def resolve(self, tenant: str | None, names: Iterable[str]) -> dict[str, str]:
        """The values of `names` for a step about to run; a missing one fails the step by name only."""
        values: dict[str, str] = {}
        for name in sorted(set(names)):
            value = self._store.value(tenant, name) if not name_problem(name) else None
            if value is None:
                raise StepError(CREDENTIAL_MISSING, f"the credential '{name}' does not exist (deleted, or never "
                                                    "created for this tenant); create it with POST /credentials")
            values[name] = value
        return values
