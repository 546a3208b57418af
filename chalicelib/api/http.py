"""HTTP helpers for the blueprints: JSON/YAML bodies, query parameters, and errors as {"detail": ...}."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from chalice import Response

from chalicelib.errors import (
    Conflict,
    FieldErrors,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    StepflowError,
    Unavailable,
    Unreadable,
    UpstreamError,
)

logger = logging.getLogger("stepflow.api")

MAX_BODY_BYTES = 256 * 1024
BODY_TYPES = ["application/json", "application/x-yaml", "application/yaml", "text/yaml", "text/plain"]
STATUS = {InvalidInput: 422, FieldErrors: 422, NotFound: 404, Conflict: 409, Gone: 410, UpstreamError: 502,
          Forbidden: 403, Unavailable: 503, PreconditionFailed: 412, Unreadable: 400}
# A passing AWS failure (throttling, a 5xx, a lost connection) outside any decision: retrying may work.
UNAVAILABLE = "a service Stepflow depends on did not answer; try again shortly"


class BadRequest(StepflowError):
    """The request cannot be read at all (malformed body, bad parameter)."""


class TooLarge(StepflowError):
    pass


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=json.dumps(body, default=str), status_code=status,
                    headers={"Content-Type": "application/json", **(headers or {})})


def error_response(status: int, detail: Any) -> Response:
    return json_response({"detail": detail}, status)


def chalice_refusals(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """The http middleware that gives Chalice's own refusals (415 for a Content-Type the route does not
    take, 405) the API's error shape, {"detail": ...} as JSON, rather than Chalice's {"Code", "Message"}."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        headers = {k: v for k, v in (response.headers or {}).items() if k.lower() != "content-type"}
        return json_response({"detail": str(body["Message"])}, response.status_code, headers)
    return response


def handles_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Maps domain errors to status codes; anything unexpected is logged, never echoed."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except BadRequest as exc:
            return error_response(400, exc.detail)
        except TooLarge as exc:
            return error_response(413, exc.detail)
        except Unavailable as exc:
            return json_response({"detail": exc.detail}, 503, {"Retry-After": "1"})
        except StepflowError as exc:
            return error_response(STATUS.get(type(exc), 400), exc.detail)
        except Exception as exc:  # noqa: BLE001 - the edge of the API: log it, answer without internals
            from chalicelib.aws.transient import is_transient  # botocore: only once something failed

            if is_transient(exc):
                logger.warning("AWS unavailable in %s: %s", view.__name__, type(exc).__name__)
                return json_response({"detail": UNAVAILABLE}, 503, {"Retry-After": "1"})
            logger.exception("unhandled error in %s", view.__name__)
            return error_response(500, "internal error; the request was logged")

    return wrapper


def read_body(request: Any, *, allow_yaml: bool = False) -> Any:
    # Imported here: the bounded YAML loader and the definition model are cold-start cost a GET never needs.
    from chalicelib.core.bounds import TooDeep, check_json_text
    from chalicelib.core.loading import DefinitionTextError, NotAnObject, load_definition_text

    raw = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise TooLarge(f"the body is {len(raw):,} bytes; at most {MAX_BODY_BYTES:,} are accepted")
    if not raw.strip():
        raise BadRequest("the request needs a JSON body")
    content_type = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text") from None
    # A body labelled otherwise (`curl -d` says application/x-www-form-urlencoded) is read as JSON, or as
    # YAML, a superset of JSON, where YAML is taken.
    if allow_yaml and content_type != "application/json":
        try:
            return load_definition_text(text)
        except NotAnObject as exc:
            raise InvalidInput({"message": str(exc), "issues": []}) from None
        except DefinitionTextError as exc:
            raise BadRequest(str(exc)) from None
    try:
        # Before json.loads: its decoder, pydantic and jsonschema all recurse into nested values.
        check_json_text(text)
        return json.loads(text)
    except TooDeep as exc:
        raise BadRequest(str(exc)) from None
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def stage_root(request: Any) -> str:
    """What precedes the app's own routes in the path the client asked for: API Gateway's stage (`/dev`),
    a custom domain's base path, or nothing. The request context's `path` is the whole path, its
    `resourcePath` the route matched (API prefix included), one segment per segment."""
    context = getattr(request, "context", None) or {}
    path, route = str(context.get("path") or ""), str(context.get("resourcePath") or "")
    parts = path.rstrip("/").split("/")
    matched = [s for s in route.split("/") if s]
    if not path.startswith("/") or len(parts) - 1 < len(matched):
        return ""
    return "/".join(parts[: len(parts) - len(matched)]).rstrip("/")


def url_of(request: Any, api_prefix: str, path: str) -> str:
    """The absolute path of one of the API's resources as this client reaches the API (stage and prefix)."""
    return stage_root(request) + api_prefix.rstrip("/") + path


def query(request: Any) -> dict[str, str]:
    return dict(request.query_params or {})


def _ranged(params: dict[str, str], name: str, default: Any, low: Any, high: Any, parse: Callable[[str], Any],
            what: str) -> Any:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be {what}") from None
    if not low <= value <= high:
        raise BadRequest(f"'{name}' must be between {low:g} and {high:g}")
    return value


def int_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    return _ranged(params, name, default, low, high, int, "a whole number")


def float_param(params: dict[str, str], name: str, default: float, low: float, high: float) -> float:
    """A number of seconds (wait times)."""
    return _ranged(params, name, default, low, high, float, "a number of seconds")


def bool_param(params: dict[str, str], name: str, default: bool = False) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise BadRequest(f"'{name}' must be true or false")
