"""The step-runner Lambda: runs one machine step (or its fallback) and returns the new state; for a step that
waits for a child workflow, starts it with the wait's token, then makes the answer the step's output."""

from __future__ import annotations

import copy
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.core.event_stream import custom_type
from chalicelib.core.failures import clean_message, public_error
from chalicelib.core.instance_data import get_path, merge_instance_data, set_path
from chalicelib.core.model import MachineStep
from chalicelib.core.payload import expand
from chalicelib.core.runs import run_of_execution
from chalicelib.runtime.definitions import LoadedDefinition, RevisionLoader
from chalicelib.tasks.credentials import CREDENTIAL_MISSING, Redactor
from chalicelib.tasks.errors import StepError, lambda_exception
from chalicelib.tasks.registry import TaskContext, TaskRegistry

if TYPE_CHECKING:
    from chalicelib.runtime.gates import Gates

MAPPING_ERROR = "Stepflow.MappingError"
events_log = logging.getLogger("stepflow.events")
steps_log = logging.getLogger("stepflow.steps")


class StepRunner:
    def __init__(self, loader: RevisionLoader, registry: TaskRegistry, *,
                 log: Callable[..., None] | None = None, sleep: Callable[[float], None] | None = None,
                 events: Any = None,
                 credentials: Callable[[str | None, set[str]], dict[str, str]] | None = None,
                 children: Any = None, gates: Gates | None = None):
        self._loader = loader
        self._children = children  # service/child_workflows.py: a waited-on child gets the parent's token
        self._gates = gates  # runtime/gates.py: needed by state machines that gate steps
        # (tenant, names) -> values, or a StepError naming the missing one (service/credentials.py).
        self._credentials = credentials
        self._registry = registry
        self._log = log
        self._sleep = sleep
        self._events = events  # an EventStore: the instance's event log (None: no log)

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """Event from the compiled Task state; returns {"steps", "data"} or raises a named error."""
        event = {"kind": "machine", **expand(event)}  # short keys from the state, kind absent for a step
        loaded = self._loader.load(event["workflow"], event["revision"])
        start_input = event.get("input") or {}
        steps = dict(event.get("steps") or {})
        if event["kind"] == "merge":
            return {"steps": steps, "data": merge_instance_data(start_input, steps, loaded.order)}
        if event["kind"] == "gate":
            self._require_gates().wait(event, loaded.order)
            return {}  # a waitForTaskToken state: its output is what the release sends
        if event["kind"] == "gated":
            # A gated machine step's own state (runtime/gates.py): it runs the step once its gate is open.
            gates = self._require_gates()
            if event["step"] not in steps:  # (a resumed run that carries its output passes it on)
                opened = gates.open(event)
                if opened is None:
                    return {}  # the arrival that opens the gate fails the token: <step>__run runs it
                steps = opened
            # A waitForTaskToken state: the step's result is its token's answer; a failure fails the state.
            gates.answer(event["token"], self._step({**event, "kind": "machine"}, steps, loaded, start_input))
            return {}
        if event["kind"] == "opened":  # <step>__run, entered when the gate opened after the step registered
            steps = self._require_gates().opened(event)
            event = {**event, "kind": "machine"}
        return self._step(event, steps, loaded, start_input)

    def _step(self, event: dict[str, Any], steps: dict[str, Any], loaded: LoadedDefinition,
              start_input: dict[str, Any]) -> dict[str, Any]:
        if event["kind"] == "release" or (event["kind"] == "machine" and event["step"] in steps):
            # A step this runner does not run (human, webhook, timer, gateway) has finished, or a resumed run
            # carries the output of a step an earlier run finished: pass it through, releasing its gates.
            self._arrive(event, steps, loaded.order)
            return {"steps": steps, "data": merge_instance_data(start_input, steps, loaded.order)}
        step = loaded.definition.step(event["step"])
        assert isinstance(step, MachineStep)
        if event["kind"] == "child" and step.id in steps:
            # The same for a step that waits for a child: its wait is answered with the output it had.
            self._waits().answer(event.get("token", ""), steps[step.id])
            return {}
        if event["kind"] == "child_done":
            # The child's end answered the wait (service/child_workflows.py): that is the step's output.
            answered = event.get("outcome")
            output: dict[str, Any] = answered if isinstance(answered, dict) else {}
            _Journal(self._events, event.get("execution", ""), step, "child", step.task_type).succeeded(output)
            steps[step.id] = output
            self._arrive(event, steps, loaded.order)
            return {"steps": steps, "data": merge_instance_data(start_input, steps, loaded.order)}
        data = merge_instance_data(start_input, steps, loaded.order)
        if event["kind"] == "fallback":
            task_type, config = step.fallback.task_type, step.fallback.config  # type: ignore[union-attr]
        else:
            task_type, config = step.task_type, step.config
        journal = _Journal(self._events, event.get("execution", ""), step, event["kind"], task_type)
        attempt = journal.started()
        hooks: dict[str, Any] = {}
        if self._log:
            hooks["log"] = self._log
        if self._sleep:
            hooks["sleep"] = self._sleep
        ctx = TaskContext(step_id=step.id, execution_id=event.get("execution", ""), attempt=attempt - 1,
                          config=config, **hooks)
        # A step's own events go into the log as it emits them (a follower sees them while the step runs).
        ctx.emit = journal.emitter(ctx.events)
        # Whatever the step produces passes through it: empty until credentials are resolved.
        redact = Redactor()
        try:
            names = {name for _, name in self._registry.credential_references(task_type, config)}
            if names:
                ctx.secrets = self._resolve(loaded.tenant_id, names)
                redact = Redactor(ctx.secrets.values())
                _redacting(ctx, redact)
            ctx.input = self._step_input(step, data, steps)
            if event["kind"] == "fallback":
                ctx.input["failure"] = _failure(event.get("failure"))
            output = redact(self._registry.run(task_type, ctx))
            if event["kind"] == "child":
                # Started: the step now waits until the child's end answers the token (or at once, if it
                # has ended already). Step Functions ignores what this invocation returns.
                self._waits().wait(ctx.execution_id, step.id, event.get("token", ""), output["instance_id"])
                return {}
        except StepError as exc:
            message = redact.text(exc.message)
            journal.failed(exc.error, message)
            raise lambda_exception(exc.error, message) from None
        except Exception as exc:  # noqa: BLE001 - any task failure fails the step, under its class's name
            # Step Functions names the error after the exception's class: keep the name and the message,
            # and leave the traceback in the log, where the Lambda payload's stackTrace cannot carry it out.
            name = type(exc).__name__
            if redact:  # the traceback's text may quote a value: logged redacted, as text
                trace = redact.text("".join(traceback.format_exception(exc)))
                steps_log.error("step %s failed with %s\n%s", step.id, name, trace)
            else:
                steps_log.exception("step %s failed with %s", step.id, name)
            message = clean_message(redact.text(str(exc)))
            journal.failed(name, message)
            raise lambda_exception(name, message) from None
        finally:
            ctx.secrets = {}
        journal.succeeded(output)
        steps[step.id] = output
        self._arrive(event, steps, loaded.order)
        return {"steps": steps, "data": merge_instance_data(start_input, steps, loaded.order)}

    def _waits(self) -> Any:
        if self._children is None:
            raise StepError("Stepflow.NotConfigured", "this step runner cannot wait for child workflows")
        return self._children

    def _require_gates(self) -> Gates:
        if self._gates is None:
            raise lambda_exception("Stepflow.GatesUnavailable", "this step runner cannot release dependency gates")
        return self._gates

    def _arrive(self, event: dict[str, Any], steps: dict[str, Any], order: Sequence[str]) -> None:
        if event.get("releases"):
            self._require_gates().arrive(event, steps, order)

    def _resolve(self, tenant: str | None, names: set[str]) -> dict[str, str]:
        if "" in names:  # registration refuses these; a definition stored before it could still hold one
            raise StepError(CREDENTIAL_MISSING, "a step config names a credential with a malformed reference")
        if self._credentials is None:
            raise StepError(CREDENTIAL_MISSING, "credentials are not available to this step runner")
        return self._credentials(tenant, names)

    @staticmethod
    def _step_input(step: MachineStep, data: dict[str, Any], steps: dict[str, Any]) -> dict[str, Any]:
        step_input = copy.deepcopy(data)
        for mapping in step.input_mappings:
            try:
                value = get_path(steps[mapping.from_step], mapping.from_field)
            except KeyError:
                raise StepError(MAPPING_ERROR, f"input mapping of '{step.id}': step '{mapping.from_step}' produced "
                                f"no '{mapping.from_field}'") from None
            set_path(step_input, mapping.to_field, copy.deepcopy(value))
        return step_input


def _redacting(ctx: TaskContext, redact: Redactor) -> None:
    """The context's log and emit, redacting what they are given (the handler's copy of the context shares them)."""
    log, emit = ctx.log, ctx.emit

    def redacted_log(message: Any, **fields: Any) -> None:
        log(redact.text(str(message)), **redact(fields))

    def redacted_emit(event_type: str, payload: dict[str, Any] | None = None) -> None:
        emit(event_type, redact(payload) if payload is not None else None)  # type: ignore[arg-type]

    ctx.log, ctx.emit = redacted_log, redacted_emit


def _failure(caught: Any) -> dict[str, Any]:
    # Catch puts {"Error", "Cause"} in the state; the fallback sees it as input.failure {error, message}.
    if isinstance(caught, dict):
        return public_error(caught.get("Error"), caught.get("Cause"))
    return {"error": None, "message": ""}


class _Journal:
    """Writes one attempt's events: step.started, the step's custom events (as it emits them), then step.succeeded,
    step.retried (another attempt follows) or step.failed. Best effort: a failed write is logged,
    never fails the step (the workflow matters more than its log)."""

    def __init__(self, store: Any, execution: str, step: MachineStep, kind: str, task_type: str):
        self._store = store
        self._instance, self._run = run_of_execution(execution)
        self._step = step
        self._kind = kind
        self._task_type = task_type
        self._attempt = 1
        self._started = time.monotonic()

    def _write(self, event_type: str, data: dict[str, Any]) -> None:
        if self._store is None or not self._instance:
            return
        try:
            self._store.append(self._instance, event_type, data, step=self._step.id)
        except Exception:  # noqa: BLE001 - see the class docstring
            events_log.exception("event not recorded", extra={"event_type": event_type, "step": self._step.id})

    def _base(self) -> dict[str, Any]:
        base: dict[str, Any] = {"attempt": self._attempt}
        if self._kind == "fallback":
            base["fallback"] = True
        return base

    def started(self) -> int:
        if self._store is not None and self._instance:
            try:
                # Counted per run, so the number matches the retrier's view of this execution.
                self._attempt = self._store.next_attempt(self._instance, self._run, self._step.id, self._kind)
            except Exception:  # noqa: BLE001 - see the class docstring
                events_log.exception("attempt not counted", extra={"step": self._step.id})
        self._write("step.started", {**self._base(), "task_type": self._task_type})
        self._started = time.monotonic()
        return self._attempt

    def emitter(self, emitted: list[dict[str, Any]]) -> Callable[[str, dict[str, Any]], None]:
        """The step's ``ctx.emit``: checks the event as TaskContext's own does, keeps it in ``emitted`` and
        writes it to the log at once (a step that emits while it works is followed while it works)."""
        def emit(event_type: str, payload: dict[str, Any] | None = None) -> None:
            if not isinstance(event_type, str) or not event_type:
                raise ValueError("an event type is a non-empty string")
            if payload is not None and not isinstance(payload, dict):
                raise TypeError("an event payload is a dict")
            emitted.append({"type": event_type, "payload": dict(payload or {})})
            self._write(custom_type(event_type), dict(payload or {}))

        return emit

    def _ended(self) -> dict[str, Any]:
        # The attempt's duration (step_duration_seconds counts it from the log: service/metrics.py).
        return {**self._base(), "task_type": self._task_type,
                "duration_ms": round((time.monotonic() - self._started) * 1000, 1)}

    def succeeded(self, output: dict[str, Any]) -> None:
        self._write("step.succeeded", {**self._ended(), "output": output})

    def failed(self, error: str, message: str) -> None:
        retry = self._step.retry
        data = {**self._ended(), "error": error, "message": clean_message(message)}
        if self._kind == "machine" and retry is not None and self._attempt < retry.max_attempts:
            self._write("step.retried", {**data, "next_attempt": self._attempt + 1})
            return
        if self._kind == "machine":
            data["fallback_follows"] = self._step.fallback is not None
        self._write("step.failed", data)
