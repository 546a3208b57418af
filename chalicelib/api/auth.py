"""Authentication and authorization at the HTTP edge: one guard table, one middleware, tenant checks.

Why a Chalice middleware and not an `@app.authorizer` custom authorizer: a middleware runs the same
code in every place the app runs (chalice.test.Client, `chalice local`/stepflow_local.server, Lambda
behind API Gateway), sees the matched route (`requestContext.resourcePath`) so the guard table can
be keyed on it, answers with our own `{"detail": ...}` errors (401/403/503), needs no per-route
`authorizer=` argument on every blueprint route, and cannot be left off a new route: a route
missing from GUARDS is refused (admin only) and a test fails. A custom authorizer would add a Lambda
invocation and API Gateway's result cache in front of every request and answer errors in API
Gateway's own shape. The verified principal is kept for the duration of the request in a
ContextVar; views read it with `principal()`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.api.http import error_response
from chalicelib.auth import ANONYMOUS_ADMIN, RANK, AuthError, NotConfigured, Principal
from chalicelib.core.definition_keys import NAME
from chalicelib.core.tasks import may_act
from chalicelib.errors import Forbidden, InvalidInput, NotFound

logger = logging.getLogger("stepflow.auth")

MAX_TENANT = 100  # as a token's tenant claim (chalicelib/auth.py) and a start's tenant_id
PUBLIC = "public"  # no token needed
BY_KEY = "key"  # no token: the unguessable key in the path is the credential (webhook callbacks)


@dataclass(frozen=True)
class Guard:
    role: str  # minimum role, or PUBLIC / BY_KEY
    # A query flag that raises the bar, e.g. DELETE ...?purge=true needs admin.
    elevated: tuple[tuple[str, str], ...] = ()


V, X, E, A = Guard("viewer"), Guard("executor"), Guard("editor"), Guard("admin")

# Every route the app serves, as (method, path under the API prefix) -> the guard. One place.
GUARDS: dict[tuple[str, str], Guard] = {
    # definitions
    ("GET", "/definitions"): V,
    ("POST", "/definitions"): E,
    ("POST", "/definitions/validate"): E,
    ("GET", "/definitions/{name}"): V,
    ("PUT", "/definitions/{name}"): E,
    ("DELETE", "/definitions/{name}"): Guard("editor", (("purge", "admin"),)),
    ("POST", "/definitions/import"): E,
    ("GET", "/definitions/{name}/export"): V,
    ("GET", "/definitions/{name}/revisions"): V,
    ("GET", "/definitions/{name}/revisions/{rev}"): V,
    ("GET", "/definitions/{name}/revisions/{rev}/diff"): V,
    ("POST", "/definitions/{name}/revisions/{rev}/restore"): E,
    ("GET", "/definitions/{name}/aliases"): V,
    ("GET", "/definitions/{name}/aliases/{alias}"): V,
    ("PUT", "/definitions/{name}/aliases/{alias}"): E,
    ("GET", "/definitions/{name}/schedules"): V,
    ("POST", "/definitions/{name}/schedules"): E,
    ("GET", "/definitions/{name}/schedules/{schedule_id}"): V,
    ("PUT", "/definitions/{name}/schedules/{schedule_id}"): E,
    ("DELETE", "/definitions/{name}/schedules/{schedule_id}"): E,
    ("POST", "/definitions/{name}/schedules/{schedule_id}/pause"): E,
    ("POST", "/definitions/{name}/schedules/{schedule_id}/resume"): E,
    ("POST", "/definitions/{name}/schedules/{schedule_id}/backfill"): E,
    ("GET", "/definitions/{name}/asl"): V,
    ("GET", "/definitions/{name}/graph"): V,
    ("POST", "/definitions/{name}/run"): X,
    # instances
    ("POST", "/instances"): X,
    ("GET", "/instances"): V,
    ("GET", "/instances/{instance_id}"): V,
    ("DELETE", "/instances/{instance_id}"): Guard("executor", (("purge", "admin"),)),
    ("POST", "/instances/{instance_id}/start"): X,
    ("GET", "/instances/{instance_id}/result"): V,
    ("GET", "/instances/{instance_id}/history"): V,
    ("POST", "/instances/{instance_id}/cancel"): X,
    ("POST", "/instances/{instance_id}/retry"): X,
    ("POST", "/instances/{instance_id}/resume"): X,
    ("POST", "/instances/{instance_id}/continue"): X,
    ("GET", "/instances/{instance_id}/graph"): V,
    ("GET", "/instances/{instance_id}/events"): V,
    ("POST", "/instances/{instance_id}/events"): X,
    # an event steers running instances (it completes a receive step): the decision of who runs them
    ("POST", "/events"): X,
    # tasks and approvals
    ("GET", "/tasks"): V,
    ("GET", "/tasks/metrics"): V,
    ("GET", "/tasks/{task_id}"): V,
    # a webhook step's callback URL is a capability: only who may work the task reads it
    ("GET", "/tasks/{task_id}/callback"): X,
    ("POST", "/tasks/{task_id}/complete"): X,
    ("POST", "/tasks/{task_id}/reassign"): X,
    ("POST", "/tasks/{task_id}/claim"): X,
    ("POST", "/tasks/{task_id}/unclaim"): X,
    ("GET", "/approvals/{task_id}"): V,
    ("POST", "/approvals/{task_id}/approve"): X,
    ("POST", "/approvals/{task_id}/reject"): X,
    # catalog
    ("GET", "/plugins"): V,
    ("GET", "/plugins/{plugin_id}"): V,
    ("GET", "/plugins/categories"): V,
    # callbacks authenticate by their key
    ("POST", "/callbacks/{key}"): Guard(BY_KEY),
    # webhook triggers: managed by editors; a hook's key and the signature over its body are its credential
    ("GET", "/definitions/{name}/triggers"): V,
    ("POST", "/definitions/{name}/triggers"): E,
    ("GET", "/definitions/{name}/triggers/{trigger_id}"): V,
    ("POST", "/definitions/{name}/triggers/{trigger_id}/disable"): E,
    ("POST", "/definitions/{name}/triggers/{trigger_id}/enable"): E,
    ("POST", "/definitions/{name}/triggers/{trigger_id}/rotate"): E,
    ("DELETE", "/definitions/{name}/triggers/{trigger_id}"): E,
    ("POST", "/hooks/{key}"): Guard(BY_KEY),
    # credentials: values are write-only; viewers read names and metadata
    ("POST", "/credentials"): E,
    ("GET", "/credentials"): V,
    ("GET", "/credentials/{name}"): V,
    ("PUT", "/credentials/{name}"): E,
    ("DELETE", "/credentials/{name}"): E,
    # the key-value store: runtime data, written by who runs workflows (steps write it too), read by all
    ("GET", "/kv/{namespace}"): V,
    ("GET", "/kv/{namespace}/{key}"): V,
    ("PUT", "/kv/{namespace}/{key}"): X,
    ("DELETE", "/kv/{namespace}/{key}"): X,
    # one-click decision links: minted by editors (or the notification path); the signed link is the credential
    ("POST", "/tasks/{task_id}/links"): E,
    ("GET", "/decide/{token}"): Guard(BY_KEY),
    ("POST", "/decide/{token}"): Guard(BY_KEY),
    # out of office: a person's own (an admin's for anyone); who works tasks sets it
    ("GET", "/users/{user}/out-of-office"): V,
    ("PUT", "/users/{user}/out-of-office"): X,
    ("DELETE", "/users/{user}/out-of-office"): X,
    # the audit log: admins of the tenant read it; nobody changes it
    ("GET", "/audit"): A,
    ("GET", "/audit/export"): A,
    # Prometheus text: an admin's token (its tenant's series), or the scrape token (SCRAPE_ROUTES)
    ("GET", "/metrics"): A,
}
# Routes a Prometheus server may also call with the deployment's scrape token (STEPFLOW_METRICS_TOKEN, not a
# JWT): the caller is then SCRAPER, which the route reads as "every tenant".
SCRAPE_ROUTES = {("GET", "/metrics")}
# Outside the API prefix: health, the web UI, the contract and its page.
PUBLIC_ROUTES = {("GET", "/health"), ("GET", "/ui"), ("GET", "/ui/{name}"), ("GET", "/ui/vendor/{name}"),
                 ("GET", "/openapi.json"), ("GET", "/docs"),
                 ("GET", "/healthz"), ("GET", "/readyz")}
FAIL_CLOSED = A

_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("stepflow_principal", default=ANONYMOUS_ADMIN)


# Who a request turned out to be, for the audit middleware outside this one (api/audit.py): set once the
# caller is known, so a refused (403) request is recorded under its caller too; left empty on a 401.
_identified: contextvars.ContextVar[list[Principal] | None] = contextvars.ContextVar("stepflow_identified",
                                                                                      default=None)


@contextlib.contextmanager
def identified() -> Iterator[list[Principal]]:
    """Collects the caller the auth middleware identifies while the block runs (empty: none was)."""
    holder: list[Principal] = []
    token = _identified.set(holder)
    try:
        yield holder
    finally:
        _identified.reset(token)


def _note(caller: Principal) -> None:
    holder = _identified.get()
    if holder is not None:
        holder.append(caller)


def principal() -> Principal:
    """The caller of the request being served (ANONYMOUS_ADMIN when authentication is off)."""
    return _current.get()


def guard_for(method: str, resource_path: str, api_prefix: str) -> Guard:
    if (method, resource_path) in PUBLIC_ROUTES:
        return Guard(PUBLIC)
    prefix = api_prefix.rstrip("/")
    path = resource_path[len(prefix):] if prefix and resource_path.startswith(prefix + "/") else resource_path
    return GUARDS.get((method, path), FAIL_CLOSED)


def required_role(guard: Guard, query: Mapping[str, str] | None) -> str:
    role = guard.role
    for flag, elevated in guard.elevated:
        if (query or {}).get(flag, "").lower() in ("1", "true", "yes") and RANK[elevated] > RANK.get(role, -1):
            role = elevated
    return role


def make_middleware(services: Callable[[], Any]) -> Callable[[Any, Callable[[Any], Any]], Any]:
    """The http middleware: authenticates, applies the route's guard, keeps the principal for the views."""

    def auth_middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
        found = services()
        authenticator = found.auth
        context = getattr(event, "context", None) or {}
        resource = context.get("resourcePath") or event.path
        guard = guard_for(event.method, resource, found.settings.api_prefix)
        if not authenticator.enabled or guard.role in (PUBLIC, BY_KEY):
            _note(ANONYMOUS_ADMIN if not authenticator.enabled else _PUBLIC_CALLER)
            token = _current.set(ANONYMOUS_ADMIN if not authenticator.enabled else _PUBLIC_CALLER)
            try:
                return get_response(event)
            finally:
                _current.reset(token)
        if _scraping(found.settings, event, resource):
            _note(SCRAPER)
            token = _current.set(SCRAPER)
            try:
                return get_response(event)
            finally:
                _current.reset(token)
        try:
            caller = authenticator.authenticate((event.headers or {}).get("authorization"))
        except NotConfigured as exc:
            logger.error("authentication is not configured: %s", exc)
            return error_response(503, "authentication is not configured on this stage")
        except AuthError as exc:
            response = error_response(401, str(exc))
            response.headers["WWW-Authenticate"] = 'Bearer realm="stepflow"'
            return response
        _note(caller)
        need = required_role(guard, event.query_params)
        if not caller.has(need):
            return error_response(403, f"this needs the {need} role" + (f"; you have {caller.role}" if caller.role
                                                                         else "; your token has no known role"))
        if caller.tenant_id is None:
            return error_response(403, "the token names no tenant (claim tenant_id or custom:tenant_id)")
        token = _current.set(caller)
        try:
            return get_response(event)
        finally:
            _current.reset(token)

    return auth_middleware


_PUBLIC_CALLER = Principal("public", (), (), None, authenticated=False)
SCRAPER = Principal("metrics-scraper", ("admin",), (), None, authenticated=True)


def _scraping(settings: Any, event: Any, resource: str) -> bool:
    """Whether the request is a scrape route called with the scrape token (compared in constant time)."""
    expected = getattr(settings, "metrics_token", None)
    if not expected:
        return False
    prefix = settings.api_prefix.rstrip("/")
    path = resource[len(prefix):] if prefix and resource.startswith(prefix + "/") else resource
    if (event.method, path) not in SCRAPE_ROUTES:
        return False
    import hmac

    given = ((event.headers or {}).get("authorization") or "").encode()
    return hmac.compare_digest(given, f"Bearer {expected}".encode())


# -- tenant isolation: a foreign tenant's record is "not found", never "forbidden" -------------------
def visible(record: Mapping[str, Any] | None, *, shared_ok: bool = False) -> bool:
    """Whether the caller may see a record carrying tenant_id (shared_ok: tenant-less records are shared)."""
    if record is None:
        return False
    caller = principal()
    if not caller.authenticated:
        return True
    owner = record.get("tenant_id")
    return owner == caller.tenant_id or (shared_ok and owner is None)


def require_instance(services: Any, instance_id: str) -> dict[str, Any]:
    record = services.instance_store.get(instance_id) if instance_id and len(instance_id) <= 255 else None
    if not visible(record):
        raise NotFound(f"no instance '{instance_id}'")
    return record  # type: ignore[return-value]


def task_tenant(services: Any, record: Mapping[str, Any]) -> str | None:
    if "tenant_id" in record:
        return record.get("tenant_id")
    instance = services.instance_store.get(record.get("instance_id") or "") or {}
    return instance.get("tenant_id")


def require_task(services: Any, task_id: str) -> dict[str, Any]:
    record = services.task_store.get(task_id) if task_id and len(task_id) <= 255 else None
    # Without authentication every task is visible: the instance is not read for its tenant.
    if record is None or (principal().authenticated and not visible({"tenant_id": task_tenant(services, record)})):
        raise NotFound(f"no task '{task_id}'")
    return record


def definition_scope(params: Mapping[str, Any] | None, namespace: str | None = None) -> tuple[str | None, str | None]:
    """(tenant, namespace) a request addresses definitions in: the token's tenant when authentication is
    on (a `tenant_id` naming another is refused), else the `tenant_id` parameter's or none; the
    `namespace` parameter (or the body's, given as `namespace`), or none."""
    params = params or {}
    named = params.get("tenant_id") or None
    if named is not None and len(named) > MAX_TENANT:
        raise InvalidInput({"message": "the request is not valid", "issues": [
            {"code": "too_long", "location": "tenant_id",
             "message": f"a tenant id has at most {MAX_TENANT} characters"}]})
    tenant = tenant_for_write(named)
    namespace = namespace if namespace is not None else (params.get("namespace") or None)
    if namespace is not None and (not isinstance(namespace, str) or not NAME.match(namespace)):
        raise InvalidInput({"message": "the request is not valid", "issues": [
            {"code": "invalid_namespace", "location": "namespace",
             "message": "a namespace is a letter then up to 79 letters, digits, '_' or '-'"}]})
    return tenant, namespace


def require_definition(services: Any, name: str, version: str | None = None, revision: str | None = None,
                       scope: tuple[str | None, str | None] | None = None) -> dict[str, Any]:
    """The definition as DefinitionService.get gives it (with its `key`), when the caller's tenant (or
    everyone) owns it. `scope`: (tenant, namespace) as definition_scope gives it; default the caller's
    tenant and no namespace."""
    tenant, namespace = scope if scope is not None else definition_scope(None)
    # Names are per tenant: another tenant's definition of this name is never looked at, so what is
    # "not found" answers the same whether the name exists elsewhere or nowhere.
    latest: dict[str, Any] | None = services.definitions.find(name, tenant, namespace)
    if latest is None or not visible(latest, shared_ok=True):
        raise NotFound(f"no definition named '{name}'")
    if version is None and revision is None:
        return latest
    return services.definitions.get(latest["key"], version, revision)  # type: ignore[no-any-return]


def may_change(services: Any, name: str, scope: tuple[str | None, str | None] | None = None) -> dict[str, Any]:
    """The definition, when the caller may change it: its own tenant's; a shared (tenant-less) one is
    changed by an admin only."""
    record = require_definition(services, name, scope=scope)
    caller = principal()
    if caller.authenticated and record.get("tenant_id") is None and not caller.is_admin:
        raise Forbidden("a shared definition is changed by an admin only")
    return record


def definition_key(services: Any, name: str, params: Mapping[str, Any] | None, *, change: bool = False) -> str:
    """The key of the caller's definition of `name` in the scope `params` name (tenant, namespace): another
    tenant's is not found, as none is; with `change`, only one the caller may change."""
    scope = definition_scope(params)
    record = may_change(services, name, scope) if change else require_definition(services, name, scope=scope)
    return str(record.get("key") or record["name"])


def refuse_reserved(name: Any) -> None:
    """A name with the prefix of anonymous definitions is refused (only an inline start makes those)."""
    from chalicelib.core.adhoc import ADHOC_PREFIX, is_adhoc

    if is_adhoc(name):
        raise InvalidInput({"message": "the definition is not valid", "issues": [{
            "code": "reserved_name", "location": "name", "hint": f"choose a name that does not start with '{ADHOC_PREFIX}'",
            "message": f"names starting with '{ADHOC_PREFIX}' are kept for definitions sent inline to POST /instances"}]})


def require_may_act(record: Mapping[str, Any]) -> None:
    """Only the assignee, a member of the task's group, or an admin works a task (403 otherwise)."""
    caller = principal()
    if not caller.authenticated:
        return
    open_to_all = not record.get("assignee") and not record.get("assignee_group") and not record.get("candidate_groups")
    if open_to_all or may_act(record, caller.id, caller.groups, admin=caller.is_admin):
        return
    raise Forbidden("only the task's assignee, a member of its group, or an admin may do this")


def actor(body: Mapping[str, Any], field: str, *, required_when_off: bool = False) -> str | None:
    """Who acts: the principal when authentication is on (a differing body value is refused with 422,
    no mass assignment); the body's value when it is off."""
    given = body.get(field)
    caller = principal()
    if caller.authenticated:
        if given is not None and given != caller.id:
            raise InvalidInput({"message": "the request body is not valid", "issues": [
                {"code": "not_allowed", "location": field,
                 "message": f"'{field}' is taken from your token; leave it out or send your own id"}]})
        return caller.id
    if given is None and required_when_off:
        raise InvalidInput({"message": "the request body is not valid", "issues": [
            {"code": "missing", "location": field, "message": "Field required"}]})
    return given


def tenant_for_write(body_tenant: str | None) -> str | None:
    caller = principal()
    if not caller.authenticated:
        return body_tenant
    if body_tenant is not None and body_tenant != caller.tenant_id:
        raise InvalidInput({"message": "the request body is not valid", "issues": [
            {"code": "not_allowed", "location": "tenant_id",
             "message": "'tenant_id' is taken from your token; leave it out or send your own tenant"}]})
    return caller.tenant_id
