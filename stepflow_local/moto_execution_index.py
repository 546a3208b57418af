"""Dict indexes over moto's Step Functions state machines and executions, so a lookup costs the same however many are kept.

moto keeps a backend's state machines in a list and each machine's executions in another, and finds one by
walking them: DescribeExecution, GetExecutionHistory and StopExecution walk the machines for the name in
the ARN, then every execution of that machine; each StartExecution walks every execution of the machine to
check the name; SendTaskSuccess/Failure/Heartbeat ask every execution of every machine whether it holds
the token. With 100,000 executions kept these walks were most of what an instance's view, a start and a
task's completion cost.

Here those lists are list subclasses that keep dicts (machine by ARN and by name, execution by ARN and by
name) in step with every change moto makes to them (append, remove, and any other mutation rebuilds),
keeping the first of equal keys as moto's walks find the first. The lookups read the dicts and raise
moto's own errors with moto's messages. A task token is indexed when an execution's callback pool
registers it, with the execution that pool belongs to: SendTask* then runs moto's own code over that one
execution instead of all of them (a token the index cannot place, such as one registered twice, takes
moto's walk). A reset backend starts with plain lists again; they are indexed on first use.

StartExecution, CreateStateMachine and DeleteStateMachine hold the backend's lock: executions start from
many server threads, and moto's name check and its append are apart (it copies the machine in between),
so two starts of one name could both pass the check; under the lock they are one step, and the dicts
change with the lists. Lookups read the dicts without it (a dict read is atomic).
"""

from __future__ import annotations

import copy
import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

ORIGINALS: dict[str, Any] = {}
_CONVERT_LOCK = threading.Lock()  # one thread turns a backend's plain list into an indexed one


class _Indexed(list):  # type: ignore[type-arg]
    """A list that keeps, per key function, a dict from key to the first item with that key."""

    _KEYS: tuple[Callable[[Any], Any], ...] = ()

    def __init__(self, items: Iterable[Any] = ()):
        super().__init__()
        self.maps: tuple[dict[Any, Any], ...] = tuple({} for _ in self._KEYS)
        for item in items:
            self.append(item)

    def _added(self, item: Any) -> None:
        for key, found in zip(self._KEYS, self.maps, strict=True):
            found.setdefault(key(item), item)

    def _rebuild(self) -> None:
        for found in self.maps:
            found.clear()
        for item in list.__iter__(self):
            self._added(item)

    def append(self, item: Any) -> None:
        super().append(item)
        self._added(item)

    def remove(self, item: Any) -> None:
        super().remove(item)
        for key, found in zip(self._KEYS, self.maps, strict=True):
            name = key(item)
            if found.get(name) is item:
                del found[name]
                # Another item with the same key is now the first (moto never makes one; kept for exactness).
                other = next((x for x in list.__iter__(self) if key(x) == name), None)
                if other is not None:
                    found[name] = other

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return copy.deepcopy(list(list.__iter__(self)), memo)  # what moto would copy: a plain list

    # Mutations moto does not make: done as a list does them, then the dicts are rebuilt.
    def _rebuilding(name: str) -> Any:  # type: ignore[misc]  # noqa: N805 - a class-body helper
        method = getattr(list, name)

        def mutate(self: _Indexed, *args: Any) -> Any:
            result = method(self, *args)
            self._rebuild()
            return result

        mutate.__name__ = name
        return mutate

    insert = _rebuilding("insert")
    extend = _rebuilding("extend")
    pop = _rebuilding("pop")
    clear = _rebuilding("clear")
    sort = _rebuilding("sort")
    reverse = _rebuilding("reverse")
    __setitem__ = _rebuilding("__setitem__")
    __delitem__ = _rebuilding("__delitem__")
    __iadd__ = _rebuilding("__iadd__")
    __imul__ = _rebuilding("__imul__")
    del _rebuilding


class _Executions(_Indexed):
    """A state machine's executions, by ARN and by name."""

    _KEYS = (lambda e: e.execution_arn, lambda e: e.name)

    @property
    def by_arn(self) -> dict[str, Any]:
        return self.maps[0]

    @property
    def by_name(self) -> dict[Any, Any]:
        return self.maps[1]


class _Machines(_Indexed):
    """A backend's state machines, by ARN and by name; appending one indexes its executions."""

    _KEYS = (lambda m: m.arn, lambda m: m.name)

    def __init__(self, items: Iterable[Any] = ()):
        self.lock = threading.RLock()
        super().__init__(items)

    def _added(self, item: Any) -> None:
        if not isinstance(item.executions, _Executions):
            item.executions = _Executions(item.executions)
        super()._added(item)

    @property
    def by_arn(self) -> dict[str, Any]:
        return self.maps[0]

    @property
    def by_name(self) -> dict[str, Any]:
        return self.maps[1]


def machines(backend: Any) -> _Machines:
    """The backend's state machine list, indexed (a new or reset backend's plain list is converted once)."""
    current = backend.state_machines
    if type(current) is _Machines:
        return current
    with _CONVERT_LOCK:
        current = backend.state_machines
        if type(current) is not _Machines:
            current = backend.state_machines = _Machines(current)
    return current


def executions(machine: Any, backend: Any) -> _Executions:
    """The machine's execution list, indexed (converted under the backend's lock if moto replaced it)."""
    current = machine.executions
    if type(current) is _Executions:
        return current
    with machines(backend).lock:
        current = machine.executions
        if type(current) is not _Executions:
            current = machine.executions = _Executions(current)
    return current


# ------------------------------------------------------------------------------------------- lookups


def _describe_state_machine(original: Any) -> Any:
    @functools.wraps(original)
    def describe_state_machine(self: Any, arn: str) -> Any:
        self._validate_machine_arn(arn)
        found = machines(self).by_arn.get(arn)
        # Not a machine's own ARN (a version's, or none): moto's walk of the (few) machines decides.
        return found if found is not None else original(self, arn)

    return describe_state_machine


def _machine_for_execution(original: Any) -> Any:
    from moto.stepfunctions.exceptions import ExecutionDoesNotExist

    @functools.wraps(original)
    def _get_state_machine_for_execution(self: Any, execution_arn: str) -> Any:
        found = machines(self).by_name.get(execution_arn.split(":")[6])
        if found is None:
            raise ExecutionDoesNotExist("Execution Does Not Exist: '" + execution_arn + "'")
        return self.describe_state_machine(found.arn)

    return _get_state_machine_for_execution


def _describe_execution(original: Any) -> Any:
    from moto.stepfunctions.exceptions import ExecutionDoesNotExist

    @functools.wraps(original)
    def describe_execution(self: Any, execution_arn: str) -> Any:
        self._validate_execution_arn(execution_arn)
        state_machine = self._get_state_machine_for_execution(execution_arn)
        found = executions(state_machine, self).by_arn.get(execution_arn)
        if not found:
            raise ExecutionDoesNotExist("Execution Does Not Exist: '" + execution_arn + "'")
        return found

    return describe_execution


def _machine_holding(original: Any) -> Any:
    from moto.stepfunctions.exceptions import ResourceNotFound

    @functools.wraps(original)
    def describe_state_machine_for_execution(self: Any, execution_arn: str) -> Any:
        for machine in list.__iter__(machines(self)):  # the few machines, each asked by its dict
            if execution_arn in executions(machine, self).by_arn:
                return machine
        raise ResourceNotFound(execution_arn)

    return describe_state_machine_for_execution


def _stop_execution(original: Any) -> Any:
    from moto.core.utils import utcnow
    from moto.stepfunctions.exceptions import ExecutionDoesNotExist

    @functools.wraps(original)
    def stop_execution(self: Any, execution_arn: str) -> Any:
        found = executions(self, self.backend).by_arn.get(execution_arn)
        if not found:
            raise ExecutionDoesNotExist("Execution Does Not Exist: '" + execution_arn + "'")
        found.stop(stop_date=utcnow(), error="", cause="")
        return found

    return stop_execution


def _name_idempotency(original: Any) -> Any:
    from moto.stepfunctions.exceptions import ExecutionAlreadyExists

    @functools.wraps(original)
    def _handle_name_input_idempotency(self: Any, name: str, execution_input: str) -> Any:
        execution = executions(self, self.backend).by_name.get(name)
        if execution is None:
            return None
        # Executions with the same name and input are considered idempotent (moto's rule, as it words it).
        if execution_input == execution.execution_input and execution.status == "RUNNING":
            return execution
        raise ExecutionAlreadyExists("Execution Already Exists: '" + execution.execution_arn + "'")

    return _handle_name_input_idempotency


def _under_backend_lock(original: Any) -> Any:
    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        with machines(self).lock:
            return original(self, *args, **kwargs)

    return method


# --------------------------------------------------------------------------------------- task tokens

_TOKENS: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()  # token -> callback pool
_AMBIGUOUS: set[str] = set()  # tokens registered by more than one pool: moto's walk decides
_TOKENS_LOCK = threading.Lock()
_POOL_OWNER = "_stepflow_execution_arn"  # set on an execution's callback pool: the execution's ARN
_holders = threading.local()  # .only: (backend, executions) that _get_executions answers with, in SendTask*


def _registering(original: Any) -> Any:
    @functools.wraps(original)
    def add(self: Any, callback_id: str, *args: Any, **kwargs: Any) -> Any:
        endpoint = original(self, callback_id, *args, **kwargs)  # raises on a token this pool already has
        with _TOKENS_LOCK:
            existing = _TOKENS.get(callback_id)
            if existing is not None and existing is not self:
                _AMBIGUOUS.add(callback_id)
            _TOKENS[callback_id] = self
        return endpoint

    return add


def _owned_environment(original: Any) -> Any:
    @functools.wraps(original)
    def _get_evaluation_environment(self: Any) -> Any:
        env = original(self)
        setattr(env.callback_pool_manager, _POOL_OWNER, self._evaluation_details.execution_details.arn)
        return env

    return _get_evaluation_environment


def token_holders(backend: Any, token: str) -> list[Any] | None:
    """The backend's executions whose callback pool holds `token` ([] when none does), or None when the
    index cannot tell (then moto's walk answers)."""
    if token in _AMBIGUOUS:
        return None
    pool = _TOKENS.get(token)
    if pool is None:
        return []  # every pool registers its tokens here: no pool has it
    arn = getattr(pool, _POOL_OWNER, None)
    if not isinstance(arn, str) or arn.count(":") < 6:
        return None  # a pool made outside an execution worker
    machine = machines(backend).by_name.get(arn.split(":")[6])
    execution = executions(machine, backend).by_arn.get(arn) if machine is not None else None
    worker = getattr(execution, "exec_worker", None)
    env = getattr(worker, "env", None)
    return [execution] if env is not None and env.callback_pool_manager is pool else []


def _only_holders(original: Any) -> Any:
    @functools.wraps(original)
    def send(self: Any, task_token: str, *args: Any, **kwargs: Any) -> Any:
        holders = token_holders(self, task_token)
        if holders is None:
            return original(self, task_token, *args, **kwargs)
        previous = getattr(_holders, "only", None)
        _holders.only = (self, holders)
        try:
            return original(self, task_token, *args, **kwargs)  # moto's code, over the holders only
        finally:
            _holders.only = previous

    return send


def _holders_only(original: Any) -> Any:
    @functools.wraps(original)
    def _get_executions(self: Any, execution_status: Any = None) -> Any:
        only = getattr(_holders, "only", None)
        if only is None or only[0] is not self:
            return original(self, execution_status)
        return [e for e in only[1] if execution_status is None or execution_status == e.status]

    return _get_executions


# -------------------------------------------------------------------------------------------- install


def _require_source(function: Any, fragments: Iterable[str], what: str) -> None:
    source = inspect.getsource(function)
    missing = [f for f in fragments if f not in source]
    if missing:
        raise RuntimeError(f"moto changed {what} (no {missing[0]!r}); re-check stepflow_local/moto_execution_index.py")


def patch(check_signature: Any) -> None:
    """Installs the indexes (check_signature(function, parameter names, what) raises when moto changed)."""
    from moto.stepfunctions.models import StateMachine, StateMachineInstance, StepFunctionBackend
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackPoolManager
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    if getattr(StepFunctionBackend.__dict__.get("describe_execution"), "__stepflow_indexed__", False):
        return
    exec_arn = ["self", "execution_arn"]
    create = ["self", "name", "definition", "roleArn", "tags", "publish", "loggingConfiguration",
              "tracingConfiguration", "encryptionConfiguration", "version_description", "sm_type"]
    plan: list[tuple[type, str, list[str], Callable[[Any], Any], tuple[str, ...]]] = [
        (StepFunctionBackend, "describe_state_machine", ["self", "arn"], _describe_state_machine,
         ("next((x for x in self.state_machines if x.arn == arn), None)", "StateMachineDoesNotExist")),
        (StepFunctionBackend, "_get_state_machine_for_execution", exec_arn, _machine_for_execution,
         ('execution_arn.split(":")[6]', "x.name == state_machine_name", "Execution Does Not Exist: '",
          "self.describe_state_machine(state_machine_arn)")),
        (StepFunctionBackend, "describe_execution", exec_arn, _describe_execution,
         ("self._validate_execution_arn(execution_arn)", "self._get_state_machine_for_execution(execution_arn)",
          "x.execution_arn == execution_arn", "Execution Does Not Exist: '")),
        (StepFunctionBackend, "describe_state_machine_for_execution", exec_arn, _machine_holding,
         ("exc.execution_arn == execution_arn", "ResourceNotFound(execution_arn)")),
        (StateMachine, "stop_execution", ["self", "execution_arn"], _stop_execution,
         ("x.execution_arn == execution_arn", 'execution.stop(stop_date=utcnow(), error="", cause="")')),
        (StateMachine, "_handle_name_input_idempotency", ["self", "name", "execution_input"], _name_idempotency,
         ("execution.name == name", "execution_input == execution.execution_input",
          'execution.status == "RUNNING"', "Execution Already Exists: '")),
        (StepFunctionBackend, "create_state_machine", create, _under_backend_lock,
         ("self.state_machines.append(state_machine)",)),
        (StepFunctionBackend, "delete_state_machine", ["self", "arn"], _under_backend_lock,
         ("self.state_machines.remove(sm)",)),
        (StepFunctionBackend, "start_execution", ["self", "state_machine_arn", "name", "execution_input"],
         _under_backend_lock, ("state_machine.start_execution(",)),
        (StepFunctionsParserBackend, "start_execution",
         ["self", "state_machine_arn", "name", "execution_input", "trace_header"], _under_backend_lock,
         ("state_machine._handle_name_input_idempotency(", "state_machine.executions.append(execution)")),
        (StepFunctionsParserBackend, "_get_executions", ["self", "execution_status"], _holders_only,
         ("for sm in self.state_machines", "for execution in sm.executions")),
        (StepFunctionsParserBackend, "send_task_success", ["self", "task_token", "outcome"], _only_holders,
         ("self._get_executions(ExecutionStatus.RUNNING)", "callback_pool_manager.notify(")),
        (StepFunctionsParserBackend, "send_task_failure", ["self", "task_token", "error", "cause"], _only_holders,
         ("self._get_executions()", "callback_pool_manager.notify(")),
        (StepFunctionsParserBackend, "send_task_heartbeat", ["self", "task_token"], _only_holders,
         ("self._get_executions(ExecutionStatus.RUNNING)", "callback_pool_manager.heartbeat(")),
        (CallbackPoolManager, "add", ["self", "callback_id"], _registering, ("self._pool[callback_id] =",)),
        (CallbackPoolManager, "add_activity_task", ["self", "callback_id", "activity_arn", "activity_input"],
         _registering, ("self._pool[callback_id] =",)),
        (ExecutionWorker, "_get_evaluation_environment", ["self"], _owned_environment,
         ("activity_store=self._activity_store",)),
    ]
    # The lists the indexes stand in for: a backend's machines, a machine's executions.
    _require_source(StepFunctionBackend.__init__, ("self.state_machines: list[StateMachine] = []",),
                    "StepFunctionBackend.__init__")
    _require_source(StateMachineInstance.__init__, ("self.executions: list[Execution] = []",),
                    "StateMachineInstance.__init__")
    _require_source(CallbackPoolManager.generate, ("self.add(",), "CallbackPoolManager.generate")
    for owner, name, parameters, _, fragments in plan:  # check everything before changing anything
        what = f"{owner.__name__}.{name}"
        check_signature(owner.__dict__.get(name), parameters, what)
        _require_source(owner.__dict__[name], fragments, what)
    for owner, name, _, wrap, _ in plan:
        current = owner.__dict__[name]
        ORIGINALS[f"{owner.__name__}.{name}"] = current
        replacement = wrap(current)
        replacement.__stepflow_indexed__ = True
        setattr(owner, name, replacement)


def patched() -> bool:
    from moto.stepfunctions.models import StepFunctionBackend

    return bool(getattr(StepFunctionBackend.__dict__.get("describe_execution"), "__stepflow_indexed__", False))

