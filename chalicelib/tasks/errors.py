"""Named step errors.

A handler fails a step with ``raise StepError("HttpStatusError", "GET https://x returned 500")``.
Step Functions uses the Lambda error type as the error name (what ``Retry``/``Catch`` match on),
and the Python runtime reports ``type(exc).__name__`` as that type; so the step runner turns a
StepError into an exception whose class ``__name__`` *is* the error name
(``StepError.as_lambda_exception()``) and raises that.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "ASSERTION_FAILED",
    "COMMON_ERRORS",
    "ERROR_NAME_MAX_LENGTH",
    "INVALID_CONFIG",
    "INVALID_OUTPUT",
    "TEMPLATE_ERROR",
    "StepError",
    "check_error_name",
    "error_name_problem",
    "is_valid_error_name",
    "lambda_exception",
]

ERROR_NAME_MAX_LENGTH = 64
ERROR_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.]*")
RESERVED_ERROR_PREFIXES = ("States.", "Lambda.")

# Errors raised by the registry itself, for any task type.
TEMPLATE_ERROR = "Stepflow.TemplateError"  # a config placeholder names a missing path
INVALID_CONFIG = "Stepflow.InvalidConfig"  # the rendered config does not match the schema
INVALID_OUTPUT = "Stepflow.InvalidOutput"  # the handler returned something other than a JSON object
ASSERTION_FAILED = "Stepflow.AssertionFailed"  # data.assert's default error
COMMON_ERRORS = (TEMPLATE_ERROR, INVALID_CONFIG, INVALID_OUTPUT)

# One class per name, so repeated failures with the same name share a type.
_LAMBDA_EXCEPTION_TYPES: dict[str, type[Exception]] = {}


def error_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a step error name, or None when it can."""
    if not isinstance(name, str):
        return "an error name must be a string"
    if not ERROR_NAME_RE.fullmatch(name):
        return f"'{name}' is not a valid error name: start with a letter, then letters, digits, '_' or '.'"
    if len(name) > ERROR_NAME_MAX_LENGTH:
        return f"error name '{name[:20]}...' is longer than {ERROR_NAME_MAX_LENGTH} characters"
    for prefix in RESERVED_ERROR_PREFIXES:
        if name.startswith(prefix):
            return f"error name '{name}' uses the reserved prefix '{prefix}'"
    return None


def is_valid_error_name(name: Any) -> bool:
    return error_name_problem(name) is None


def check_error_name(name: Any) -> str:
    problem = error_name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def _lambda_exception_type(name: str) -> type[Exception]:
    cls = _LAMBDA_EXCEPTION_TYPES.get(name)
    if cls is None:
        cls = type(name, (Exception,), {"__module__": "stepflow.errors", "__qualname__": name})
        _LAMBDA_EXCEPTION_TYPES[name] = cls
    return cls


def lambda_exception(name: str, message: str) -> Exception:
    """An exception the Lambda runtime reports as error ``name`` with ``message`` and nothing else."""
    return _lambda_exception_type(name)(message)


class StepError(Exception):
    """Fail the step with a named error.

    ``error`` must match ``[A-Za-z][A-Za-z0-9_.]*``, be at most 64 characters and not start
    with ``States.`` or ``Lambda.`` (reserved by Step Functions / Lambda); otherwise the
    constructor raises ValueError. ``details`` is optional JSON-able context for the runner
    (e.g. the HTTP status); it is not part of the Lambda error.
    """

    def __init__(self, error: str, message: str = "", *, details: dict[str, Any] | None = None):
        check_error_name(error)
        super().__init__(message or error)
        self.error = error
        self.message = message or error
        self.details = dict(details) if details else {}

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"StepError({self.error!r}, {self.message!r})"

    def as_lambda_exception(self) -> Exception:
        """An exception whose class ``__name__`` is ``self.error`` and whose message is ``self.message``."""
        return lambda_exception(self.error, self.message)

    def to_dict(self) -> dict[str, Any]:
        """``{"error", "cause"}``, the shape of a Step Functions error output."""
        return {"error": self.error, "cause": self.message}
