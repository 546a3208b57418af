"""What users see of a failure: {error, message}, never a stack trace or a server path.

Step Functions reports a failed Lambda task as an error name and a cause; the cause is the Lambda
runtime's JSON payload {"errorMessage", "errorType", "stackTrace", ...}. Everything shown (instance and
step errors, results, events, a fallback's input) goes through ``public_error`` or ``clean_message``:
the error name and the message the task raised are kept, the stack trace stays in the logs.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.core.bounds import loads_json

MAX_MESSAGE = 1000  # characters of a message kept

_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*File \"", re.MULTILINE)
# An absolute path to a Python file, or one under a server directory; not the path of a URL (after "x:/"
# or a host name), nor a relative path.
_PATH = re.compile(r"(?<![\w:/.~-])/(?:[\w.@+-]+/)*[\w.@+-]+\.pyc?\b"
                   r"|(?<![\w:/.~-])/(?:var|opt|usr|home|root|tmp|work|proc|etc|srv|mnt|lib|lib64|sys|bin)"
                   r"(?:/[\w.@+-]+)+/?")


def clean_message(text: Any) -> str:
    """The message as users may see it: a traceback cut off, server paths replaced, at most MAX_MESSAGE."""
    if text is None:
        return ""
    message = text if isinstance(text, str) else str(text)
    found = _TRACEBACK.search(message)
    if found:
        message = message[: found.start()].rstrip()
    message = _PATH.sub("<path>", message)
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def public_error(error: Any, cause: Any) -> dict[str, Any]:
    """``{"error", "message"}`` from Step Functions' error name and cause (a Lambda payload or plain text)."""
    message = cause
    if isinstance(cause, str) and cause.lstrip().startswith("{"):
        try:
            payload = loads_json(cause)
        except ValueError:  # plain text that starts with a brace, or nested past the bound
            payload = None
        if isinstance(payload, dict) and ("errorMessage" in payload or "errorType" in payload):
            message = payload.get("errorMessage")
            error = error or payload.get("errorType")
    return {"error": error, "message": clean_message(message)}
