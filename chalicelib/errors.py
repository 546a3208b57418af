"""Domain errors: one root, subclasses that carry context; HTTP codes are chosen at the API edge."""

from __future__ import annotations

from typing import Any


class StepflowError(Exception):
    def __init__(self, detail: Any):
        super().__init__(detail if isinstance(detail, str) else "stepflow error")
        self.detail = detail


class InvalidInput(StepflowError):
    """The request is well-formed but its content is wrong (every problem listed)."""


class Unreadable(StepflowError):
    """The request's body cannot be read at all (not UTF-8, not JSON): 400, where InvalidInput is 422."""


class NotFound(StepflowError):
    pass


class Conflict(StepflowError):
    """The request does not fit the current state (already done, not waiting...)."""


class UpstreamError(StepflowError):
    """An AWS service refused or failed; reported without its raw message."""


class Unavailable(StepflowError):
    """An AWS service failed for now; the request may be retried (the detail says how)."""


class FieldErrors(InvalidInput):
    """A submitted form does not match its schema; the detail lists each field's problem."""


class Forbidden(StepflowError):
    """The caller is known and may see the thing, but may not do this to it."""


class Gone(StepflowError):
    """The thing exists but can no longer be acted on (an expired or canceled task)."""


class PreconditionFailed(StepflowError):
    """A conditional write's precondition (If-Match, If-None-Match) does not hold: the thing changed."""
