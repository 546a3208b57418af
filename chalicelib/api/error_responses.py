"""The error contract as OpenAPI components/responses: one response per status, each {"detail": ...}.

docs/api.md's "Errors" table says the same; tests/error_contract.py sends each class to every route.
"""

from __future__ import annotations

from typing import Any

# status -> (component name, when it is answered)
CONTRACT: dict[str, tuple[str, str]] = {
    "400": ("BadRequest", "The request cannot be read: a body that is not JSON (or YAML where YAML is taken), "
                          "not UTF-8, too deep or empty where one is needed; or a malformed query parameter, "
                          "header or cursor"),
    "401": ("Unauthorized", "No token, or one that is not valid (WWW-Authenticate says which scheme); an "
                            "unsigned or badly signed hook delivery"),
    "403": ("Forbidden", "The token's role or tenant does not allow this"),
    "404": ("NotFound", "No route matches the path (whatever the method), or the resource does not exist "
                        "(also another tenant's)"),
    "405": ("MethodNotAllowed", "The route exists but does not take this method; Allow lists those it takes"),
    "409": ("Conflict", "The request does not fit the current state"),
    "410": ("Gone", "The task expired or was canceled"),
    "412": ("PreconditionFailed", "If-Match or If-None-Match does not hold"),
    "413": ("PayloadTooLarge", "The body is over 256 KiB"),
    "415": ("UnsupportedMediaType", "A Content-Type the route does not take (JSON; YAML too where definitions "
                                    "are sent); a body sent without one, or form-encoded as `curl -d` labels "
                                    "it, is read as JSON"),
    "422": ("UnprocessableContent", "The body is well-formed but not valid (wrong types, missing or unknown "
                                    "fields): detail is {message, issues: [{code, location, message}]}"),
    "429": ("TooManyRequests", "Over a webhook trigger's rate limit (Retry-After says when to try again)"),
    "502": ("BadGateway", "An AWS service failed"),
    "503": ("ServiceUnavailable", "A service Stepflow depends on did not answer, or authentication is not "
                                  "configured on this stage (Retry-After when retrying may work)"),
}
HEADERS = {
    "405": {"Allow": {"description": "The methods the route takes", "schema": {"type": "string"}}},
    "429": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}},
    "503": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}},
}


def components() -> dict[str, Any]:
    """components/responses: each status of the contract, by name."""
    found = {}
    for status, (name, when) in CONTRACT.items():
        response: dict[str, Any] = {
            "description": f"{status}: {when}",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if status in HEADERS:
            response["headers"] = HEADERS[status]
        found[name] = response
    return found
