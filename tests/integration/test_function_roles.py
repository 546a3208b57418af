"""Each function's IAM role grants exactly what its code can call: the actions infra/code_actions.py reads off the
adapters and task types its handler reaches, and what running it needs (logs, traces, its stream and queue).

The roles and this test share the derivation, so they are checked against the code in three ways: the roles in
the built template against the derivation (nothing missing, nothing more), the derivation against calls a
sample of code is known to make (it finds them, in the functions that make them, and refuses what it cannot
attribute), and the derivation against the calls the app really makes on the emulated AWS (none is missing).
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from infra import build as infra_build
from infra import code_actions, roles
from stepflow_local.schedules import scheduled_event

STAGE = "dev"
RUNNING = {*roles.LOG_ACTIONS, "xray:PutTelemetryRecords", "xray:PutTraceSegments"}


@pytest.fixture(scope="module")
def infra(local_runtime) -> infra_build.Build:
    import app  # noqa: F401 - the app reads its settings at import: inside the runtime, as every test does

    return infra_build.build(STAGE)


def granted(template: dict[str, Any], function: infra_build.AppFunction) -> dict[str, set[str]]:
    """Sid -> the actions the function's role grants in that statement."""
    role = template["Resources"][roles.role_id(function.logical_id)]["Properties"]
    out: dict[str, set[str]] = {}
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"]
            out.setdefault(statement["Sid"], set()).update([actions] if isinstance(actions, str) else actions)
    return out


def all_granted(template: dict[str, Any], function: infra_build.AppFunction) -> set[str]:
    return set().union(*granted(template, function).values())


def test_each_function_s_role_grants_what_its_code_calls_and_nothing_more(infra):
    assert {f.name for f in infra.functions} >= {"api", "step_runner", "task_registrar", "overdue_sweep",
                                                 "execution_events", "lifecycle_events", "schedule_fired"}
    for function in infra.functions:
        props = infra.template["Resources"][function.logical_id]["Properties"]
        assert props["Role"] == {"Fn::GetAtt": [roles.role_id(function.logical_id), "Arn"]}, function.name
        calls = code_actions.actions_of(function.handler)
        called = set().union(*calls.values())
        by_sid = granted(infra.template, function)
        code_sids = {roles.SCOPES[(origin, action)] for origin, actions in calls.items() for action in actions}
        # Every call is granted, in the statement of its scope (the task types' on task resources only).
        for origin, actions in calls.items():
            for action in actions:
                assert action in by_sid[roles.SCOPES[(origin, action)]], (function.name, origin, action)
        # Nothing more: a code statement grants only calls of its scope, and the rest is what running needs.
        for sid, actions in by_sid.items():
            if sid in code_sids:
                assert actions == {a for o, found in calls.items() for a in found if roles.SCOPES[(o, a)] == sid}
            elif sid.startswith("Pass"):
                assert actions == {"iam:PassRole"}
                passed = {roles.PASSES_ROLE[a][0] for a in called if a in roles.PASSES_ROLE}
                assert sid.removeprefix("Pass") in passed, (function.name, sid)
            elif sid == "Stream":
                assert function.kind == infra_build.STREAM_CONSUMER and actions == set(roles.STREAM_ACTIONS)
            elif sid == "DeadLetters":
                assert actions == set(roles.QUEUE_ACTIONS)
            elif sid == "Consume":  # the queue its event source mapping reads (resources.QUEUES)
                assert function.kind == "SQSEventConfig" and actions == set(roles.CONSUME_ACTIONS)
            else:
                assert sid in ("Logs", "Tracing") and actions <= RUNNING, (function.name, sid, actions)
        assert by_sid["Logs"] and by_sid["Tracing"]


def test_the_derivation_finds_the_calls_where_the_code_makes_them(infra):
    actions = {f.name: code_actions.actions_of(f.handler) for f in infra.functions}

    def holds(name: str, origin: str = "service") -> frozenset[str]:
        return actions[name].get(origin, frozenset())

    # The adapters' calls, each in a function that makes it.
    assert {"states:SendTaskSuccess", "dynamodb:PutItem", "dynamodb:Query"} <= holds("task_registrar")
    assert "secretsmanager:GetSecretValue" in holds("step_runner")  # a step's credentials
    assert {"states:PublishStateMachineVersion", "states:CreateStateMachineAlias"} <= holds("api")  # publish=True
    assert {"events:PutEvents"} <= holds("lifecycle_events")
    assert "dynamodb:BatchGetItem" in holds("api")  # the task store reads many tasks at once
    # A transaction is authorised item by item: no dynamodb:TransactWriteItems exists.
    assert not any(a.startswith("dynamodb:Transact") for found in actions.values() for a in found.get("service", ()))
    # Task types: aws.* and notify.* run in the step runner (s3 via client_for(aws, "s3").get_object).
    assert {"s3:GetObject", "s3:PutObject", "sqs:SendMessage", "sns:Publish", "lambda:InvokeFunction",
            "ses:SendEmail", "events:PutEvents"} <= holds("step_runner", "tasks")
    # And where the code does not go, nor does the role: the stream consumer holds no credentials, runs no
    # task type, creates no schedule; only the functions that hold workflow schedules call the Scheduler;
    # the readiness probe (DescribeTable) is the API's.
    assert not {a for a in holds("lifecycle_events") if a.startswith(("secretsmanager:", "scheduler:", "states:"))}
    assert "tasks" not in actions["lifecycle_events"]
    # The task registrar holds the instance service, but calls only what records a waiting instance: no
    # credentials, no task type (a member is followed method by method, through what its constructor got).
    assert not {a for a in holds("task_registrar") if a.startswith(("secretsmanager:", "scheduler:"))}
    # Every function reads the stage's own secrets at its cold start, through their own adapter (granted on
    # their ARNs only, never on the tenants' credentials).
    assert all("secretsmanager:GetSecretValue" in actions[f].get("stage", ()) for f in actions)
    assert "tasks" not in actions["task_registrar"]
    assert {f for f, found in actions.items() if "scheduler:CreateSchedule" in found.get("service", ())} == {
        "api", "schedule_fired", "overdue_sweep"}
    assert {f for f, found in actions.items() if "dynamodb:DescribeTable" in found.get("service", ())} == {"api"}
    for function in infra.functions:  # so their roles differ
        assert all_granted(infra.template, function) - RUNNING, function.name
    assert set().union(*actions["lifecycle_events"].values()) < set().union(*actions["api"].values())


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


APP = """
    from chalice import Chalice
    from chalicelib.wiring import Services

    app = Chalice(app_name="sample")
    services = Services()

    @app.lambda_function(name="worker")
    def worker(event, context):
        return services.store.save(event)

    @app.lambda_function(name="idle")
    def idle(event, context):
        return services.settings

    @app.lambda_function(name="cleaner")
    def cleaner(event, context):
        return services.store.purge(event)

    @app.lambda_function(name="borrower")
    def borrower(event, context):
        return services.store.lend()
"""
WIRING = """
    class Services:
        def settings(self):
            return {}

        def store(self):
            from chalicelib.aws.clients import client
            from chalicelib.aws.store import Store

            return Store(client("dynamodb", "us-east-1"), client("sqs", "us-east-1"))
"""


def test_a_call_added_to_an_adapter_reaches_the_functions_that_hold_it_and_no_other(tmp_path):
    root = _tree(tmp_path, {"app.py": APP, "chalicelib/__init__.py": "", "chalicelib/aws/__init__.py": "",
                            "chalicelib/wiring.py": WIRING, "chalicelib/aws/store.py": """
        class Store:
            def __init__(self, ddb, queue):
                self._ddb, self._queue = ddb, queue

            def save(self, item):
                self._ddb.put_item(TableName="t", Item=item)
                self._ddb.transact_write_items(TransactItems=[])
                pages = self._ddb.get_paginator("query")
                return self._queue.send_message(QueueUrl="q", MessageBody="{}"), pages

            def purge(self, key):
                self._ddb.delete_item(TableName="t", Key=key)

            def lend(self):
                return [self]  # whoever gets it may call anything it has
    """})
    assert code_actions.actions_of("app.worker", root) == {"service": frozenset({
        "dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem",
        "dynamodb:Query", "sqs:SendMessage"})}
    # The same adapter, another method: only its call.
    assert code_actions.actions_of("app.cleaner", root) == {"service": frozenset({"dynamodb:DeleteItem"})}
    assert code_actions.actions_of("app.idle", root) == {}
    # An instance handed on is followed whole: every call it has.
    assert code_actions.actions_of("app.borrower", root)["service"] == \
        code_actions.actions_of("app.worker", root)["service"] | {"dynamodb:DeleteItem"}


def test_a_client_call_the_derivation_cannot_attribute_stops_it(tmp_path):
    root = _tree(tmp_path, {"app.py": APP, "chalicelib/__init__.py": "", "chalicelib/aws/__init__.py": "",
                            "chalicelib/wiring.py": WIRING, "chalicelib/aws/store.py": """
        class Store:
            def __init__(self, ddb, queue):
                self._any = ddb

            def save(self, item):
                self._any.put_item(TableName="t", Item=item)
                return self._any.send_message(QueueUrl="q", MessageBody="{}")  # no one service has both
    """})
    with pytest.raises(code_actions.DerivationError, match=r"self\._any.*put_item.*send_message"):
        code_actions.actions_of("app.worker", root)


def test_an_action_no_scope_covers_is_never_granted_on_everything():
    with pytest.raises(SystemExit, match="dynamodb:DeleteTable"):
        roles.code_statements({"service": frozenset({"dynamodb:DeleteTable"})}, {})


class Recorder:
    """The IAM action of every call the app's own AWS clients make, by the function making it: a Lambda handler
    of app.py while it runs (on whichever thread the emulator runs it), else the API on the test's thread."""

    def __init__(self) -> None:
        self.calls: dict[str, set[str]] = {}
        self.test_thread = threading.get_ident()
        self.local = threading.local()

    def record(self, model: Any = None, **_: Any) -> None:
        function = getattr(self.local, "function", None)
        if function is None and threading.get_ident() == self.test_thread:
            function = "api"
        if function is not None:
            self.calls.setdefault(function, set()).update(
                code_actions.iam_actions(model.service_model.service_name, model.name))

    def wrap(self, name: str, handler: Any) -> Any:
        def run(*args: Any) -> Any:
            before = getattr(self.local, "function", None)
            self.local.function = name
            try:
                return handler(*args)
            finally:
                self.local.function = before

        return run


@pytest.fixture
def recorder(local_aws, monkeypatch):
    """Records the app's calls while the test runs. The emulated Lambda looks a handler up on app.py at each
    invocation, so the step runner and task registrar run through the recorder's wrappers."""
    import app as app_module
    from chalicelib.aws.clients import client

    recorder = Recorder()
    for name in ("step_runner", "task_registrar", "overdue_sweep", "execution_events", "lifecycle_events"):
        monkeypatch.setattr(app_module, name, recorder.wrap(name, getattr(app_module, name)))
    hooked = [client(service, local_aws.region).meta.events for service in ("dynamodb", "stepfunctions", "events",
                                                                            "secretsmanager")]
    for events in hooked:
        events.register("before-call", recorder.record)
    yield recorder
    for events in hooked:
        events.unregister("before-call", recorder.record)


def test_what_the_functions_really_call_is_in_their_roles(api, local_aws, recorder, infra):
    """The static derivation against the calls made on the emulated AWS by every function (the API, the step
    runner, the task registrar, the status-change and stream consumers, the sweep) through a human-task
    workflow from start to end: a call the derivation missed would be refused on AWS."""
    import app as app_module
    from chalicelib.examples import bundled
    from stepflow_local.status_events import StatusWatcher, status_handlers
    from stepflow_local.streams import StreamPump, stream_handlers

    status, body = api.post("/definitions", bundled()["expense_approval"])
    assert status in (200, 201), body
    status, started = api.post("/instances", {"definition_name": "expense_approval", "user_id": "alice",
                                              "input_data": {"requester": "alice", "manager": "bob",
                                                             "amount": 100, "description": "Books"}})
    assert status == 201, started
    assert api.wait(started["id"], until=("waiting", "failed"))["status"] == "waiting"
    task = api.one_task("assignee_id=bob")
    status, done = api.post(f"/tasks/{task['id']}/complete", {"output_data": {"approved": True},
                                                              "completed_by": "bob"})
    assert status == 200, done
    assert api.wait(started["id"])["status"] == "completed"
    # The consumers, as the local runtime hands them the execution's end and the event log's stream.
    local_aws.wait_for_execution(app_module.services.instance_store.get(started["id"])["execution_arn"])
    assert StatusWatcher(local_aws, status_handlers(app_module.app)).poll() >= 1
    assert StreamPump(local_aws, stream_handlers(app_module.app, local_aws)).poll() > 0
    for path in ("/definitions", "/instances", f"/instances/{started['id']}", "/tasks", "/credentials"):
        status, _ = api.get(path)
        assert status == 200, path
    assert api.client.http.get("/readyz").status_code == 200
    app_module.overdue_sweep(scheduled_event("overdue_sweep", local_aws.region), None)

    calls = recorder.calls
    assert {"dynamodb:PutItem", "states:StartExecution", "states:SendTaskSuccess"} <= calls["api"]
    assert {"dynamodb:PutItem"} <= calls["task_registrar"]  # the task and its token
    assert calls["step_runner"] and calls["overdue_sweep"] and calls["execution_events"]
    assert "events:PutEvents" in calls["lifecycle_events"]  # instance.started, task.completed... to the bus
    by_name = {f.name: f for f in infra.functions}
    for function, actions in calls.items():
        missing = actions - all_granted(infra.template, by_name[function])
        assert not missing, f"{function} called {sorted(missing)}, which its role does not grant"


def test_a_member_that_may_build_either_of_two_classes_reaches_both(tmp_path):
    root = _tree(tmp_path, {"chalicelib/__init__.py": "", "chalicelib/aws/__init__.py": "", "app.py": """
        from chalice import Chalice
        from chalicelib.wiring import Services

        app = Chalice(app_name="sample")
        services = Services()

        @app.lambda_function(name="worker")
        def worker(event, context):
            return services.queue.send(event)
    """, "chalicelib/wiring.py": """
        class Services:
            def queue(self):
                from chalicelib.aws.clients import client
                from chalicelib.aws.queues import Local, Remote

                if self.local:
                    return Local(client("dynamodb", "us-east-1"))
                return Remote(client("sqs", "us-east-1"))
    """, "chalicelib/aws/queues.py": """
        class Local:
            def __init__(self, ddb):
                self._ddb = ddb

            def send(self, item):
                self._ddb.put_item(TableName="t", Item=item)


        class Remote:
            def __init__(self, sqs):
                self._sqs = sqs

            def send(self, item):
                self._sqs.send_message(QueueUrl="q", MessageBody="{}")
    """})
    assert code_actions.actions_of("app.worker", root) == {"service": frozenset({"dynamodb:PutItem",
                                                                                 "sqs:SendMessage"})}
