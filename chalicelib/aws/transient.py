"""Which AWS failures pass by themselves (throttling, a 5xx, a lost connection): worth a retry, never a bug."""

from __future__ import annotations

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

TRANSIENT_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "RequestLimitExceeded", "ServiceUnavailable", "ServiceUnavailableException", "InternalServerError",
    "InternalFailure", "InternalServerErrorException", "RequestTimeout", "RequestTimeoutException",
})


def is_transient(exc: BaseException) -> bool:
    """True for an AWS call that failed for now: the request may be retried as it was."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return exc.response.get("Error", {}).get("Code") in TRANSIENT_CODES or status >= 500
    return isinstance(exc, (HTTPClientError, BotoConnectionError))
