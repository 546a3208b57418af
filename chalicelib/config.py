"""Settings of one deployment, read from the environment once, at the edge of the app."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from chalicelib.auth import deployment_problems
from chalicelib.core.cursors import derive_key
from chalicelib.resources import (
    AUDIT,
    DEFINITIONS,
    EVENTS,
    INSTANCES,
    KV,
    METRICS,
    STEP_RUNNER,
    TASK_REGISTRAR,
    TASKS,
    TRIGGERS,
    WEBHOOK_RETRIES,
)

LOCAL_WEBHOOK_SECRET = "stepflow-local-webhook-secret"
# The development signing secret of the local stage (make token signs with it). Never used elsewhere.
LOCAL_JWT_SECRET = "stepflow-local-jwt-secret-change-me-0123456789"
# The local stage's development server secret (cursors and callback keys derive from it).
LOCAL_SERVER_SECRET = "stepflow-local-server-secret-change-me-0123456789"
AUTH_MODES = ("off", "hs256", "jwks")
# Set by `make package` only: `chalice package` imports app.py for a deployed stage on a machine that
# holds none of its secrets. Never in a function's environment (a test reads the packaged template).
PACKAGING_ENV = "STEPFLOW_PACKAGING"
MIN_SERVER_SECRET_BYTES = 32


def stream_arn_of(region: str, table: str) -> str:
    """A stream ARN naming the table (account and stream label unknown here): what the app declares its
    stream consumer with until the deployment template binds the table's real StreamArn."""
    return f"arn:aws:dynamodb:{region}:000000000000:table/{table}/stream/latest"


class SettingsError(ValueError):
    """The environment asks for something a stage does not allow (e.g. auth off on a deployed stage)."""


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    definitions_table: str
    instances_table: str
    tasks_table: str
    step_runner_arn: str
    task_registrar_arn: str
    state_machine_role_arn: str
    state_machine_prefix: str
    api_prefix: str
    event_bus: str = "default"
    sweep_minutes: int = 5
    events_table: str = ""
    triggers_table: str = ""
    kv_table: str = ""
    # The event log's stream, which app.lifecycle_events reads (the deployment template binds it; the
    # local runtime exports it; otherwise a name derived from the table, which only the template replaces).
    events_stream_arn: str = ""
    event_settle_seconds: float = 0.5
    # How long an event sent before its receive step waits is kept (service/mailboxes.py): by default, and
    # at most (a sender's ttl_seconds).
    event_keep_seconds: int = 3600
    event_keep_max_seconds: int = 7 * 86400
    webhook_secret: str | None = None
    tenant_webhook_secrets: dict[str, str] = field(default_factory=dict)
    # Authentication (docs/security.md): off only on the local stage.
    auth_mode: str = "off"
    jwt_secret: str | None = None
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # Egress of http.request steps and completion webhooks: private ranges only where allowed.
    egress_allow_private: bool = True
    openapi_include_workflows: bool = True
    # Credentials are Secrets Manager secrets named <secrets_prefix><tenant or _>/<name> (chalicelib/aws/secrets.py).
    secrets_prefix: str = "stepflow-local-credentials/"
    # Seals page cursors and derives webhook callback keys (STEPFLOW_SERVER_SECRET; see docs/security.md).
    server_secret: str = LOCAL_SERVER_SECRET
    # The local runtime (STEPFLOW_LOCAL_RUNTIME=1) cannot start a state machine version or alias: Stepflow
    # routes pinned starts itself there (service/routing.py).
    emulated_versions: bool = False
    # Workflow schedules on EventBridge Scheduler (the template sets these; unset: the local runtime fires them).
    schedule_fired_arn: str = ""
    scheduler_role_arn: str = ""
    scheduler_group: str = "default"
    # Completion webhook retries: the queue the webhook_retry function reads (its name, known at import)
    # and its URL, which the template sets; unset, the local runtime's timer or the sweep sends retries.
    webhook_retry_queue: str = ""
    webhook_retry_queue_url: str = ""
    # /readyz waits this long for its probes (DynamoDB, Step Functions) before answering 503.
    ready_deadline_seconds: float = 2.0
    audit_table: str = ""
    # How long audit records are kept (DynamoDB TTL): a month locally, 13 months on a deployed stage.
    audit_retention_days: int = 30
    metrics_table: str = ""
    # A bearer token a Prometheus server scrapes /metrics with (every tenant's series); unset: admins only.
    metrics_token: str | None = None

    @property
    def webhook_retry_queue_arn(self) -> str:
        """An ARN naming the retry queue (account unknown here), as webhook_retry declares its queue until
        the deployment template binds the queue's real ARN (as for the event log's stream)."""
        return f"arn:aws:sqs:{self.region}:000000000000:{self.webhook_retry_queue}"

    @property
    def cursor_key(self) -> bytes:
        return derive_key(self.server_secret, "cursors")

    @property
    def callback_secret(self) -> bytes:
        return derive_key(self.server_secret, "callbacks")

    @property
    def link_secret(self) -> bytes:
        """Signs one-click decision links (core/links.py): a link is good only if this service made it."""
        return derive_key(self.server_secret, "decision-links")

    @property
    def trigger_secret(self) -> bytes:
        """Derives each webhook trigger's signing secret from its stored nonce (service/triggers.py)."""
        return derive_key(self.server_secret, "triggers")

    @property
    def auth_enabled(self) -> bool:
        return self.auth_mode != "off"

    def webhook_secret_for(self, tenant_id: str | None) -> bytes | None:
        """The tenant's own signing secret, else the deployment's; None when neither is set."""
        secret = self.tenant_webhook_secrets.get(tenant_id or "") or self.webhook_secret
        return secret.encode() if secret else None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, *, check: bool = True) -> Settings:
        """The settings; a deployed stage whose authentication or secrets are incomplete is refused
        (SettingsError at cold start) unless `check` is off (the template builder reads names only)."""
        env = dict(os.environ if env is None else env)
        check = check and env.get(PACKAGING_ENV) != "1"
        stage = env.get("STEPFLOW_STAGE", "local")
        prefix = env.get("STEPFLOW_RESOURCE_PREFIX", f"stepflow-{stage}-")
        local = stage == "local"
        auth_mode = (env.get("STEPFLOW_AUTH") or ("off" if local else "jwks")).strip().lower()
        if auth_mode not in AUTH_MODES:
            raise SettingsError(f"STEPFLOW_AUTH must be one of {', '.join(AUTH_MODES)}, not '{auth_mode}'")
        if auth_mode == "off" and not local and check:
            raise SettingsError(f"stage '{stage}' is deployed: authentication cannot be off (STEPFLOW_AUTH)")
        jwt_secret = env.get("STEPFLOW_JWT_SECRET") or (LOCAL_JWT_SECRET if local else None)
        server_secret = env.get("STEPFLOW_SERVER_SECRET") or None
        if server_secret is None and jwt_secret:
            server_secret = derive_key(jwt_secret, "server").hex()  # one secret to manage where HS256 is used
        if not local and check:
            problems = deployment_problems(auth_mode, jwt_secret, env.get("STEPFLOW_JWKS_URL") or None,
                                           env.get("STEPFLOW_JWT_ISSUER") or None,
                                           env.get("STEPFLOW_JWT_AUDIENCE") or None)
            if env.get("STEPFLOW_SERVER_SECRET") is not None and \
                    len(env["STEPFLOW_SERVER_SECRET"].encode()) < MIN_SERVER_SECRET_BYTES:
                problems.append(f"STEPFLOW_SERVER_SECRET must be at least {MIN_SERVER_SECRET_BYTES} bytes")
            elif server_secret is None:
                problems.append("set STEPFLOW_SERVER_SECRET_ARN (a secret of at least 32 random bytes): it seals "
                                "page cursors and derives callback keys")
            # A deployed function gets secrets by ARN; the app reads them (chalicelib/aws/stage_secrets.py)
            # before these settings are made: an ARN without its value means nobody read it.
            problems += [f"{name}_ARN is set but its value was not read" for name in
                         ("STEPFLOW_JWT_SECRET", "STEPFLOW_SERVER_SECRET", "STEPFLOW_WEBHOOK_SECRET")
                         if env.get(f"{name}_ARN") and not env.get(name)]
            if problems:
                raise SettingsError(f"stage '{stage}' is deployed and refuses to start: " + "; ".join(problems))
        return cls(
            stage=stage,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            definitions_table=env.get(DEFINITIONS.env_var, DEFINITIONS.physical_name(prefix)),
            instances_table=env.get(INSTANCES.env_var, INSTANCES.physical_name(prefix)),
            tasks_table=env.get(TASKS.env_var, TASKS.physical_name(prefix)),
            events_table=env.get(EVENTS.env_var, EVENTS.physical_name(prefix)),
            triggers_table=env.get(TRIGGERS.env_var, TRIGGERS.physical_name(prefix)),
            kv_table=env.get(KV.env_var, KV.physical_name(prefix)),
            events_stream_arn=env.get(EVENTS.stream_env_var) or stream_arn_of(
                env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
                env.get(EVENTS.env_var, EVENTS.physical_name(prefix))),
            event_settle_seconds=float(env.get("STEPFLOW_EVENT_SETTLE_SECONDS", "0.5") or 0.5),
            event_keep_max_seconds=max(1, int(env.get("STEPFLOW_EVENT_KEEP_MAX_SECONDS", "604800") or 604800)),
            event_keep_seconds=max(1, min(int(env.get("STEPFLOW_EVENT_KEEP_SECONDS", "3600") or 3600),
                                          int(env.get("STEPFLOW_EVENT_KEEP_MAX_SECONDS", "604800") or 604800))),
            step_runner_arn=env.get(STEP_RUNNER.env_var, ""),
            task_registrar_arn=env.get(TASK_REGISTRAR.env_var, ""),
            state_machine_role_arn=env.get("STEPFLOW_STATE_MACHINE_ROLE_ARN", ""),
            state_machine_prefix=env.get("STEPFLOW_STATE_MACHINE_PREFIX", prefix),
            api_prefix="/" + env.get("STEPFLOW_API_PREFIX", "/workflows").strip("/"),
            event_bus=env.get("STEPFLOW_EVENT_BUS", "default"),
            sweep_minutes=max(1, int(env.get("STEPFLOW_SWEEP_MINUTES", "5") or 5)),
            # The local stage signs with a fixed, documented development secret unless one is given.
            webhook_secret=env.get("STEPFLOW_WEBHOOK_SECRET") or (LOCAL_WEBHOOK_SECRET if stage == "local" else None),
            tenant_webhook_secrets=json.loads(env.get("STEPFLOW_TENANT_WEBHOOK_SECRETS") or "{}"),
            auth_mode=auth_mode,
            jwt_secret=jwt_secret,
            jwks_url=env.get("STEPFLOW_JWKS_URL") or None,
            jwt_issuer=env.get("STEPFLOW_JWT_ISSUER") or None,
            jwt_audience=env.get("STEPFLOW_JWT_AUDIENCE") or None,
            egress_allow_private=_flag(env.get("STEPFLOW_EGRESS_ALLOW_PRIVATE"), local),
            secrets_prefix=env.get("STEPFLOW_SECRETS_PREFIX") or f"{prefix}credentials/",
            openapi_include_workflows=_flag(env.get("STEPFLOW_OPENAPI_INCLUDE_WORKFLOWS"), True),
            server_secret=server_secret or LOCAL_SERVER_SECRET,
            emulated_versions=_flag(env.get("STEPFLOW_LOCAL_RUNTIME"), False),
            schedule_fired_arn=env.get("STEPFLOW_SCHEDULE_FIRED_ARN", ""),
            scheduler_role_arn=env.get("STEPFLOW_SCHEDULER_ROLE_ARN", ""),
            scheduler_group=env.get("STEPFLOW_SCHEDULER_GROUP", "default"),
            webhook_retry_queue=WEBHOOK_RETRIES.physical_name(prefix),
            webhook_retry_queue_url=env.get(WEBHOOK_RETRIES.env_var, ""),
            ready_deadline_seconds=float(env.get("STEPFLOW_READY_DEADLINE_SECONDS") or 2.0),
            audit_table=env.get(AUDIT.env_var, AUDIT.physical_name(prefix)),
            metrics_table=env.get(METRICS.env_var, METRICS.physical_name(prefix)),
            metrics_token=env.get("STEPFLOW_METRICS_TOKEN") or None,
            audit_retention_days=max(1, int(env.get("STEPFLOW_AUDIT_RETENTION_DAYS") or (30 if local else 400))),
        )
