"""Builds the service graph from settings, lazily: nothing touches AWS until a request needs it."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from chalicelib.config import PACKAGING_ENV, Settings
from chalicelib.core.times import iso
from chalicelib.resources import STEP_RUNNER, TABLES, TASK_REGISTRAR

if TYPE_CHECKING:  # each property imports its own class: a cold start loads only what its first request builds
    from mypy_boto3_dynamodb import DynamoDBClient

    from chalicelib.auth import Authenticator
    from chalicelib.aws.definition_store import DefinitionStore
    from chalicelib.aws.event_store import EventStore
    from chalicelib.aws.events import EventPublisher
    from chalicelib.aws.gate_store import GateStore
    from chalicelib.aws.instance_store import InstanceStore
    from chalicelib.aws.stage_secrets import StageSecrets
    from chalicelib.aws.state_machines import StateMachines
    from chalicelib.aws.task_store import TaskStore
    from chalicelib.runtime.definitions import RevisionLoader
    from chalicelib.runtime.gates import Gates
    from chalicelib.runtime.step_runner import StepRunner
    from chalicelib.runtime.task_registrar import TaskRegistrar
    from chalicelib.service.absences import AbsenceService
    from chalicelib.service.aliases import AliasService
    from chalicelib.service.audit import AuditLog
    from chalicelib.service.child_workflows import ChildWorkflows
    from chalicelib.service.credentials import CredentialService
    from chalicelib.service.definitions import DefinitionService
    from chalicelib.service.events import EventService
    from chalicelib.service.instances import InstanceService
    from chalicelib.service.kv import KvService
    from chalicelib.service.lifecycle import LifecyclePublisher
    from chalicelib.service.mailboxes import MailboxService
    from chalicelib.service.metrics import MetricsRecorder
    from chalicelib.service.notifications import Notifier, RetryTimer
    from chalicelib.service.revisions import RevisionService
    from chalicelib.service.routing import EmulatedRouting, QualifiedRouting
    from chalicelib.service.schedules import ScheduleService
    from chalicelib.service.tasks import TaskService
    from chalicelib.service.triggers import TriggerService
    from chalicelib.tasks.registry import TaskRegistry

def now_utc() -> datetime:
    return datetime.now(UTC)


def utc_now() -> str:
    return iso(now_utc())


class Services:
    def __init__(self, settings: Settings | None = None, env: dict[str, str] | None = None):
        self._settings = settings
        self._env = env  # None: the process environment
        self._secrets: StageSecrets | None = None

    @cached_property
    def settings(self) -> Settings:
        if self._settings is not None:
            return self._settings
        env = dict(os.environ if self._env is None else self._env)
        if self._secrets is None and env.get(PACKAGING_ENV) != "1":  # packaging holds no access to the stage
            from chalicelib.aws.stage_secrets import StageSecrets

            self._secrets = StageSecrets.from_env(env, env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
                                                  or "us-east-1")
        # Secrets given by ARN are read here (a cold start that cannot read one stops with StageSecretError).
        return Settings.from_env({**env, **(self._secrets.values() if self._secrets else {})})

    def refresh_secrets(self) -> bool:
        """At the start of an invocation: re-reads the stage's secrets when their interval has passed, and
        when one changed, builds the settings and everything made from them again (a rotation is picked up)."""
        if self._secrets is None or not self._secrets.refresh():
            return False
        for name in [n for n in self.__dict__ if isinstance(getattr(type(self), n, None), cached_property)]:
            del self.__dict__[name]  # keys derived from the old values go with what holds them
        return True

    @cached_property
    def auth(self) -> Authenticator:
        from chalicelib.auth import Authenticator

        s = self.settings
        return Authenticator(s.auth_mode, s.jwt_secret, s.jwks_url, s.jwt_issuer, s.jwt_audience,
                             deployed=s.stage != "local")

    @cached_property
    def registry(self) -> TaskRegistry:
        from chalicelib import custom_tasks, egress
        from chalicelib.aws.clients import client
        from chalicelib.resources import FUNCTIONS, TASK_RESOURCE_INFIX
        from chalicelib.tasks.builtin.aws_calls import AwsAccess
        from chalicelib.tasks.builtin.aws_services import reserved_functions
        from chalicelib.tasks.registry import default_registry

        s = self.settings
        # The stack's resource prefix, read off its own function names ("<prefix>step_runner").
        prefixes = {s.state_machine_prefix}
        for fn, arn in zip(FUNCTIONS, (s.step_runner_arn, s.task_registrar_arn), strict=False):
            name = arn.rsplit(":", 1)[-1]
            if name.endswith(fn.name):
                prefixes.add(name[: -len(fn.name)])
        reserved = reserved_functions(tuple(sorted(p for p in prefixes if p)), TASK_RESOURCE_INFIX)
        aws = AwsAccess(lambda service: client(service, s.region), reserved)
        registry = default_registry(http_client=egress.http_client(s.egress_allow_private), aws=aws,
                                    workflows=self.child_workflows)
        from chalicelib.tasks.builtin import kv as kv_tasks

        kv_tasks.register(registry, store=lambda: self.kv, tenant_of=self.execution_tenant)
        custom_tasks.register(registry)
        return registry

    @cached_property
    def ddb(self) -> DynamoDBClient:
        from chalicelib.aws.clients import client

        return client("dynamodb", self.settings.region)

    @cached_property
    def machines(self) -> StateMachines:
        from chalicelib.aws.clients import client
        from chalicelib.aws.state_machines import StateMachines

        s = self.settings
        return StateMachines(client("stepfunctions", s.region), s.state_machine_role_arn, s.state_machine_prefix)

    @cached_property
    def definition_store(self) -> DefinitionStore:
        from chalicelib.aws.definition_store import DefinitionStore

        return DefinitionStore(self.ddb, self.settings.definitions_table)

    @cached_property
    def instance_store(self) -> InstanceStore:
        from chalicelib.aws.instance_store import InstanceStore

        return InstanceStore(self.ddb, self.settings.instances_table)

    @cached_property
    def task_store(self) -> TaskStore:
        from chalicelib.aws.task_store import TaskStore

        return TaskStore(self.ddb, self.settings.tasks_table)

    @cached_property
    def definitions(self) -> DefinitionService:
        from chalicelib.service.definitions import DefinitionService

        s = self.settings
        placeholders = {STEP_RUNNER.placeholder: s.step_runner_arn, TASK_REGISTRAR.placeholder: s.task_registrar_arn}
        return DefinitionService(self.definition_store, self.machines, self.registry, lambda: placeholders, utc_now,
                                 published=lambda pointer: self.aliases.follow_latest(pointer),
                                 credentials=lambda tenant, names: self.credentials.known(tenant, names))

    def placeholders(self) -> dict[str, str]:
        s = self.settings
        return {STEP_RUNNER.placeholder: s.step_runner_arn, TASK_REGISTRAR.placeholder: s.task_registrar_arn}

    @cached_property
    def routing(self) -> QualifiedRouting | EmulatedRouting:
        from chalicelib.service.routing import EmulatedRouting, QualifiedRouting, RevisionMachines

        if self.settings.emulated_versions:
            return EmulatedRouting(RevisionMachines(self.definitions, self.machines, self.placeholders))
        return QualifiedRouting(self.machines)

    @cached_property
    def aliases(self) -> AliasService:
        from chalicelib.aws.alias_store import AliasStore
        from chalicelib.service.aliases import AliasService

        return AliasService(self.definitions, AliasStore(self.ddb, self.settings.definitions_table), self.routing,
                            utc_now, self.definition_store.history)

    @cached_property
    def revisions(self) -> RevisionService:
        from chalicelib.service.revisions import RevisionService

        return RevisionService(self.definitions, self.definition_store)

    @cached_property
    def notifier(self) -> Notifier:
        from chalicelib.outbound import post_json
        from chalicelib.service.notifications import Notifier

        post = functools.partial(post_json, allow_private=self.settings.egress_allow_private)
        return Notifier(self.instance_store, post, self.settings.webhook_secret_for, now_utc,
                        observe=lambda tenant, ok, given_up: self.metrics.webhook(tenant, ok, given_up),
                        timer=lambda: self.retry_timer)

    @cached_property
    def retry_timer(self) -> RetryTimer | None:
        """Completion webhook retries on time: the SQS queue the template makes; locally the runtime sets
        its own (stepflow_local/webhook_retries.py); neither: the sweep alone sends them."""
        if not self.settings.webhook_retry_queue_url:
            return None
        from chalicelib.aws.clients import client
        from chalicelib.aws.retry_queue import SqsRetryTimer

        return SqsRetryTimer(client("sqs", self.settings.region), self.settings.webhook_retry_queue_url, now_utc)

    @cached_property
    def instances(self) -> InstanceService:
        from chalicelib.service.instances import InstanceService

        return InstanceService(self.definitions, self.instance_store, self.machines, self.loader, now_utc,
                               tasks=self.tasks, notifier=self.notifier, events=lambda: getattr(self, "events", None),
                               aliases=self.aliases, routing=self.routing, gates=self.gate_store)

    @cached_property
    def loader(self) -> RevisionLoader:
        from chalicelib.runtime.definitions import RevisionLoader

        return RevisionLoader(self.definition_store.revision)

    @cached_property
    def child_workflows(self) -> ChildWorkflows:
        """Starts child workflows for workflow.start steps, and ties a waiting step to its child's end."""
        from chalicelib.service.child_workflows import ChildWorkflows

        return ChildWorkflows(lambda: self.instances, lambda: self.definitions, lambda: self.instance_store)

    @cached_property
    def step_runner(self) -> StepRunner:
        from chalicelib.runtime.step_runner import StepRunner

        return StepRunner(self.loader, self.registry, events=self.event_store,
                          credentials=lambda tenant, names: self.credentials.resolve(tenant, names),
                          children=self.child_workflows, gates=self.gates)

    @cached_property
    def gate_store(self) -> GateStore:
        from chalicelib.aws.gate_store import GateStore

        return GateStore(self.ddb, self.settings.triggers_table)

    @cached_property
    def gates(self) -> Gates:
        from chalicelib.runtime.gates import Gates

        # The Step Functions client only when a gate is released: most steps release none.
        return Gates(self.gate_store, lambda token, output: self.machines.send_success(token, output),
                     lambda token, error, cause: self.machines.send_failure(token, error, cause))

    @cached_property
    def task_registrar(self) -> TaskRegistrar:
        from chalicelib.runtime.task_registrar import TaskRegistrar

        return TaskRegistrar(self.loader, self.task_store, now_utc, self.machines.send_success,
                             events=self.event_store, callback_secret=self.settings.callback_secret,
                             on_waiting=lambda instance_id: self.instances.waiting_changed(instance_id, True),
                             tenant_of=lambda instance_id: (self.instance_store.get(instance_id) or {}).get("tenant_id"),
                             started_by_of=lambda instance_id: (self.instance_store.get(instance_id) or {}).get("created_by"),
                             deliver_completed=lambda task, run: self.tasks.deliver_to_run(task, run),
                             receivers=self.mailboxes)

    @cached_property
    def credentials(self) -> CredentialService:
        from chalicelib.aws.clients import client
        from chalicelib.aws.secrets import SecretStore
        from chalicelib.service.credentials import CredentialService

        s = self.settings
        return CredentialService(SecretStore(client("secretsmanager", s.region), s.secrets_prefix), utc_now)

    @cached_property
    def publisher(self) -> EventPublisher:
        from chalicelib.aws.clients import client
        from chalicelib.aws.events import EventPublisher

        return EventPublisher(client("events", self.settings.region), self.settings.event_bus)

    @cached_property
    def lifecycle(self) -> LifecyclePublisher:
        from chalicelib.service.lifecycle import LifecyclePublisher

        return LifecyclePublisher(self.publisher, self.task_store)

    @cached_property
    def absences(self) -> AbsenceService:
        from chalicelib.service.absences import AbsenceService

        return AbsenceService(self.task_store, now_utc)

    @cached_property
    def tasks(self) -> TaskService:
        from chalicelib.service.tasks import TaskService

        return TaskService(self.task_store, self.machines, self.loader, self.publisher, now_utc,
                           events=self.event_store, instances=self.instance_store,
                           api_prefix=self.settings.api_prefix, callback_secret=self.settings.callback_secret,
                           link_secret=self.settings.link_secret)

    @cached_property
    def mailboxes(self) -> MailboxService:
        from chalicelib.aws.mailbox_store import MailboxStore
        from chalicelib.service.mailboxes import MailboxService

        s = self.settings
        return MailboxService(MailboxStore(self.ddb, s.tasks_table), self.tasks, self.task_store, now_utc,
                              keep_seconds=s.event_keep_seconds, max_keep_seconds=s.event_keep_max_seconds)

    @cached_property
    def event_store(self) -> EventStore:
        from chalicelib.aws.event_store import EventStore

        return EventStore(self.ddb, self.settings.events_table)

    @cached_property
    def events(self) -> EventService:
        from chalicelib.core.definition_keys import instance_key
        from chalicelib.service.events import EventService

        def receive_steps(record: dict[str, Any]) -> list[dict[str, Any]]:
            if not record.get("revision"):
                return []
            loaded = self.loader.load(instance_key(record), record["revision"])
            return [{"id": s.id, "event_type": s.event_type} for s in loaded.definition.steps if s.type == "receive"]

        return EventService(self.event_store, self.instance_store, self.tasks, now_utc,
                            settle_seconds=self.settings.event_settle_seconds, mailboxes=self.mailboxes,
                            receive_steps=receive_steps)

    @cached_property
    def triggers(self) -> TriggerService:
        from chalicelib.aws.trigger_store import TriggerStore
        from chalicelib.service.triggers import TriggerService

        s = self.settings
        return TriggerService(TriggerStore(self.ddb, s.triggers_table), self.definitions, self.aliases, self.instances,
                              s.trigger_secret, now_utc, s.api_prefix)

    @cached_property
    def kv(self) -> KvService:
        from chalicelib.aws.kv_store import KvStore
        from chalicelib.service.kv import KvService

        return KvService(KvStore(self.ddb, self.settings.kv_table), now_utc)

    @cached_property
    def audit(self) -> AuditLog:
        from chalicelib.aws.audit_store import AuditStore
        from chalicelib.service.audit import AuditLog

        s = self.settings
        return AuditLog(AuditStore(self.ddb, s.audit_table), now_utc, s.audit_retention_days)

    @cached_property
    def metrics(self) -> MetricsRecorder:
        from chalicelib.aws.metrics_store import MetricsStore
        from chalicelib.service.metrics import MetricsRecorder

        return MetricsRecorder(MetricsStore(self.ddb, self.settings.metrics_table), self.instance_store.get,
                               lambda tenant: self.tasks.metrics(tenant=tenant))

    def readiness_probes(self) -> dict[str, Callable[[], None]]:
        """What /readyz checks: every table the app reads and writes, and Step Functions."""
        from chalicelib.aws.clients import client
        from chalicelib.aws.readiness import dynamodb_probe, stepfunctions_probe

        s = self.settings
        tables = [getattr(s, f"{table.name}_table", "") for table in TABLES]
        return {"dynamodb": dynamodb_probe(self.ddb, [name for name in tables if name]),
                "stepfunctions": stepfunctions_probe(client("stepfunctions", s.region))}

    def execution_tenant(self, execution: str) -> str | None:
        """The tenant of the instance an execution runs (a step's tenant); LookupError when the instance is
        not recorded, so a step never falls back to another tenant's (or the shared) data."""
        from chalicelib.core.runs import run_of_execution

        instance_id, _ = run_of_execution(execution)
        record = self.instance_store.get(instance_id) if instance_id else None
        if record is None:
            raise LookupError(f"no instance recorded for execution '{execution}'")
        return record.get("tenant_id")

    @cached_property
    def schedules(self) -> ScheduleService:
        from chalicelib.aws.schedule_store import ScheduleStore
        from chalicelib.aws.scheduler import EventBridgeSchedules, LocalSchedules
        from chalicelib.service.schedules import ScheduleService

        s = self.settings
        triggers: EventBridgeSchedules | LocalSchedules = LocalSchedules()
        if s.schedule_fired_arn:  # deployed: EventBridge Scheduler invokes schedule_fired
            from chalicelib.aws.clients import client

            triggers = EventBridgeSchedules(client("scheduler", s.region), s.schedule_fired_arn, s.scheduler_role_arn,
                                            s.state_machine_prefix, s.scheduler_group)
        return ScheduleService(self.definitions, ScheduleStore(self.ddb, s.definitions_table), triggers,
                               self.instances, self.instance_store, now_utc)
