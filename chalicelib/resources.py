"""The AWS resources Stepflow needs, described once: the local runtime and the deploy template use it."""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.core.listing import INSTANCE_FAMILIES, TASK_FAMILIES, TASK_OVERDUE


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str | None = None


@dataclass(frozen=True)
class Table:
    """A DynamoDB table: logical id (used in templates), base name, string keys and indexes."""

    logical_id: str
    name: str
    hash_key: str
    range_key: str | None = None
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None
    env_var: str = ""
    # A DynamoDB stream of the table's changes (its view type), and the variable that names its ARN.
    stream_view: str | None = None
    stream_env_var: str = ""

    def physical_name(self, prefix: str) -> str:
        return f"{prefix}{self.name}"

    def create_table_request(self, physical_name: str) -> dict:
        """CreateTable arguments (on-demand, string keys, indexes projecting everything)."""
        key_schema = [{"AttributeName": self.hash_key, "KeyType": "HASH"}]
        if self.range_key:
            key_schema.append({"AttributeName": self.range_key, "KeyType": "RANGE"})
        request: dict = {
            "TableName": physical_name,
            "KeySchema": key_schema,
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in self.key_attributes()],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if self.stream_view:
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream_view}
        if self.indexes:
            request["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": [{"AttributeName": index.hash_key, "KeyType": "HASH"}]
                    + ([{"AttributeName": index.range_key, "KeyType": "RANGE"}] if index.range_key else []),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in self.indexes
            ]
        return request

    def key_attributes(self) -> list[str]:
        names = [self.hash_key, *([self.range_key] if self.range_key else [])]
        for index in self.indexes:
            names += [index.hash_key, *([index.range_key] if index.range_key else [])]
        return list(dict.fromkeys(names))


DEFINITIONS = Table(
    "DefinitionsTable", "definitions", "name", "sk",
    indexes=(Index("by_kind", "kind", "name"),),
    env_var="STEPFLOW_DEFINITIONS_TABLE",
)
# Every listing is one query of a `list_*` index (core/listing.py: keyed on tenant + filters, newest
# first by created_key; `list_live_*` leave deleted instances out). by_status is the reconciler's
# (every tenant). notify_state is sparse: only instances whose completion webhook still has to be
# (re)delivered are in by_notify. `chore` is sparse too: it names the follow-up work an instance still
# needs ("launch": its execution is not recorded yet; "close": it ended and its tasks or notifications
# may still be open), so the sweep reads only those.
INSTANCES = Table(
    "InstancesTable", "instances", "id",
    indexes=(
        *(Index(f.index, f.attribute, f.range_key) for f in INSTANCE_FAMILIES),
        Index("by_status", "status", "created_key"),
        Index("by_notify", "notify_state", "next_notify_at"),
        Index("by_chore", "chore", "chore_at"),
    ),
    env_var="STEPFLOW_INSTANCES_TABLE",
)
# Inbox queries and the sweep read indexes, never the table. The `inbox_*` indexes are keyed on
# tenant + filters (core/listing.py); inbox_overdue is sparse (pending tasks with a due date, by due_at). The *_state
# attributes exist only while an item needs that attention, so those indexes are sparse: the sweep
# reads due items only. The table also holds one counter item per tenant (`counter#<tenant>`: pending
# per group, pending in all, overdue), changed in the same transaction as the task it counts.
TASKS = Table(
    "TasksTable", "tasks", "id",
    indexes=(
        *(Index(f.index, f.attribute, f.range_key) for f in (*TASK_FAMILIES, TASK_OVERDUE)),
        Index("by_instance", "instance_id", "created_key"),
        Index("by_due", "due_state", "due_at"),
        Index("by_reminder", "reminder_state", "reminder_at"),
        Index("by_outbox", "outbox_state", "completed_at"),
        # Webhook tasks only (sparse): POST /callbacks/{key} finds its task without a scan.
        Index("by_callback_key", "callback_key"),
    ),
    env_var="STEPFLOW_TASKS_TABLE",
)
# Each instance's event log (core/event_stream.py): seq is time-ordered and unique per writer. Its stream
# is the outbox of the lifecycle events published to EventBridge (app.lifecycle_events,
# service/lifecycle.py): what the log holds is published, whichever request or function wrote it.
EVENTS = Table("EventsTable", "events", "instance_id", "seq", env_var="STEPFLOW_EVENTS_TABLE",
               stream_view="NEW_AND_OLD_IMAGES", stream_env_var="STEPFLOW_EVENTS_STREAM_ARN")
# Webhook triggers (service/triggers.py): a trigger item under its workflow (`def#<name>`, `trigger#<id>`),
# its key's lookup item (`key#<sha256 of the key>`), and short-lived items that expire by TTL: the
# deliveries seen within the replay window (`seen#<trigger>`) and the rate window counters (`rate#<trigger>`).
# It also holds the dependency gates of running instances (`gate#<instance>`, aws/gate_store.py).
TRIGGERS = Table("TriggersTable", "triggers", "pk", "sk", ttl_attribute="expires_at", env_var="STEPFLOW_TRIGGERS_TABLE")
# The key-value store (service/kv.py): pk is the tenant and namespace (core/kv.py), sk the key. DynamoDB's
# TTL deletes an expired item some time after expires_at (and emulators never do), so reads compare it
# with the clock themselves.
KV = Table("KvTable", "kv", "pk", "sk", ttl_attribute="expires_at", env_var="STEPFLOW_KV_TABLE")
# The audit log (service/audit.py): pk is the tenant's scope, sk the time and the record's id; each filter of
# GET /audit has its index (keyed on scope + actor, target or operation, newest first by sk). Records are
# only ever put, never overwritten; TTL removes them after the stage's retention.
AUDIT = Table("AuditTable", "audit", "pk", "sk",
              indexes=(Index("by_actor", "actor_key", "sk"), Index("by_target", "target_key", "sk"),
                       Index("by_operation", "operation_key", "sk")),
              ttl_attribute="expires_at", env_var="STEPFLOW_AUDIT_TABLE")
# Metric counters (service/metrics.py): pk the tenant, sk the metric and its labels; atomic ADDs only.
METRICS = Table("MetricsTable", "metrics", "pk", "sk", env_var="STEPFLOW_METRICS_TABLE")
TABLES: tuple[Table, ...] = (DEFINITIONS, INSTANCES, TASKS, EVENTS, TRIGGERS, KV, AUDIT, METRICS)


@dataclass(frozen=True)
class Function:
    """A Lambda function defined in app.py with @app.lambda_function(name=...)."""

    name: str
    handler: str
    env_var: str
    placeholder: str


STEP_RUNNER = Function("step_runner", "app.step_runner", "STEPFLOW_STEP_RUNNER_ARN", "StepRunnerFunctionArn")
TASK_REGISTRAR = Function("task_registrar", "app.task_registrar", "STEPFLOW_TASK_REGISTRAR_ARN", "TaskRegistrarFunctionArn")
FUNCTIONS: tuple[Function, ...] = (STEP_RUNNER, TASK_REGISTRAR)


@dataclass(frozen=True)
class Queue:
    """An SQS queue an app function consumes (@app.on_sqs_message), with its dead-letter queue."""

    logical_id: str
    name: str
    consumer: str  # the consuming function's name
    env_var: str  # names the queue's URL for the functions that send to it
    max_receives: int = 5  # receives of a message that failed each time before it goes to the dead-letter queue

    def physical_name(self, prefix: str) -> str:
        return f"{prefix}{self.name}"

    @property
    def dead_letter_logical_id(self) -> str:
        return f"{self.logical_id}DeadLetters"

    def dead_letter_name(self, prefix: str) -> str:
        return f"{prefix}{self.name}-dlq"


# Completion webhook retries: a message per retry, delayed until it is due, consumed by webhook_retry.
# Locally the runtime's timer calls the same handler (stepflow_local/webhook_retries.py).
WEBHOOK_RETRIES = Queue("WebhookRetryQueue", "webhook-retries", "webhook_retry", "STEPFLOW_WEBHOOK_RETRY_QUEUE_URL")
QUEUES: tuple[Queue, ...] = (WEBHOOK_RETRIES,)


@dataclass(frozen=True)
class Resources:
    tables: tuple[Table, ...] = TABLES
    functions: tuple[Function, ...] = FUNCTIONS
    extra: dict[str, str] = field(default_factory=dict)


# Resources a workflow's aws.* and notify.* steps may reach on AWS are named "<resource prefix>tasks-...": the
# deploy template scopes the service role to them (infra/build.py), and no other function of the stack prefix
# may be invoked by a step.
TASK_RESOURCE_INFIX = "tasks-"
