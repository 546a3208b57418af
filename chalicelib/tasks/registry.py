"""Task types: what a machine step can run, its schemas, and how it is run.

A registry maps a task type id (``"http.request"``, ``"billing.charge"``) to a ``TaskType``:
JSON Schemas for its config, input and output, the named errors it can raise, and a handler
``handler(ctx: TaskContext) -> dict | None``. ``TaskRegistry.run`` renders the config
templates against the step input, validates the rendered config, calls the handler and
checks its result.

Pure Python: stdlib and jsonschema only. No AWS, no environment reads. There is no global
registry; ``default_registry()`` builds a new one with the built-in catalog each call.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from chalicelib.tasks import templating
from chalicelib.tasks.errors import (
    ASSERTION_FAILED,
    COMMON_ERRORS,
    INVALID_CONFIG,
    INVALID_OUTPUT,
    TEMPLATE_ERROR,
    StepError,
    error_name_problem,
    is_valid_error_name,
)

__all__ = [
    "ASSERTION_FAILED",
    "COMMON_ERRORS",
    "INVALID_CONFIG",
    "INVALID_OUTPUT",
    "TEMPLATE_ERROR",
    "ConfigIssue",
    "StepError",
    "TaskContext",
    "TaskRegistry",
    "TaskType",
    "UnknownTaskType",
    "default_registry",
    "error_name_problem",
    "is_valid_error_name",
]

logger = logging.getLogger("stepflow.tasks")

TASK_ID_MAX_LENGTH = 128
TASK_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z][A-Za-z0-9_-]*)*")
ANY_OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}
_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# Errors whose failing value is a string with a placeholder in it cannot be judged before
# rendering: the text changes. (A value that is exactly one placeholder may become any type,
# so every error about it waits for run time.)
_STRING_VALIDATORS = frozenset({"pattern", "format", "minLength", "maxLength", "enum", "const"})


# --------------------------------------------------------------------------- context


@dataclass
class TaskContext:
    """What a handler gets.

    ``config`` is the step's config; the registry hands the handler a copy of the context
    whose config is already rendered (placeholders filled) and validated. ``input`` is the
    instance data plus mapped fields. ``attempt`` is the 0-based retry count.

    ``log(message, **fields)`` writes a structured log line (default: the ``stepflow.tasks``
    logger, one JSON object per line, and a copy in ``logs``). ``emit(event_type, payload)``
    records a custom event (default: appended to ``events`` as ``{"type", "payload"}``).
    ``sleep(seconds)`` defaults to ``time.sleep``; a local runtime can pass a scaled one.
    ``secrets`` holds the credentials the step names, resolved by the step runner (name -> value):
    ``{{ secrets.NAME }}`` placeholders render from it, and a task type reads the ones its
    ``credential_fields`` name. Never put a value from it into an output, event or log line.
    """

    step_id: str
    execution_id: str
    attempt: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    # None means "the default" and is replaced in __post_init__.
    log: Callable[..., None] = None  # type: ignore[assignment]
    emit: Callable[[str, dict[str, Any]], None] = None  # type: ignore[assignment]
    sleep: Callable[[float], None] = time.sleep
    events: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # The defaults close over the lists, not over self, so dataclasses.replace() copies
        # (which the registry makes to hand over the rendered config) share them.
        if self.log is None:
            self.log = _default_log(self.logs, self.step_id, self.execution_id, self.attempt)
        if self.emit is None:
            self.emit = _default_emit(self.events)


def _default_log(records: list, step_id: str, execution_id: str, attempt: int) -> Callable[..., None]:
    def log(message: str, **fields: Any) -> None:
        record = {"message": str(message), **fields}
        records.append(record)
        level = _LOG_LEVELS.get(str(fields.get("level", "info")).lower(), logging.INFO)
        if logger.isEnabledFor(level):
            line = {"step_id": step_id, "execution_id": execution_id, "attempt": attempt, **record}
            logger.log(level, json.dumps(line, default=str, ensure_ascii=False))

    return log


def _default_emit(events: list) -> Callable[[str, dict[str, Any]], None]:
    def emit(event_type: str, payload: dict[str, Any] | None = None) -> None:
        if not isinstance(event_type, str) or not event_type:
            raise ValueError("an event type is a non-empty string")
        if payload is not None and not isinstance(payload, dict):
            raise TypeError("an event payload is a dict")
        events.append({"type": event_type, "payload": dict(payload or {})})

    return emit


# --------------------------------------------------------------------------- task types


def _or_any_object(schema: dict[str, Any] | None) -> dict[str, Any]:
    """The schema given, or TaskType's default (any object) when none was."""
    return dict(ANY_OBJECT_SCHEMA) if schema is None else schema


@dataclass(frozen=True, kw_only=True)
class TaskType:
    """A kind of machine step.

    ``raw_config_keys`` are top-level config keys that are *not* templated (e.g. data.assert's
    ``condition``, which is code, not text to fill in). ``check_config(config)`` is an optional
    extra validator run by ``validate_config`` after the schema; it returns ConfigIssues.
    ``credential_fields`` are dotted config paths whose value is a credential's name (e.g.
    ``auth.credential``); keep them under a raw key, so the name is literal and can be checked
    when the definition is registered.
    """

    id: str
    handler: Callable[[TaskContext], dict[str, Any] | None]
    name: str = ""
    category: str = "custom"
    description: str = ""
    config_schema: dict[str, Any] = field(default_factory=lambda: dict(ANY_OBJECT_SCHEMA))
    input_schema: dict[str, Any] = field(default_factory=lambda: dict(ANY_OBJECT_SCHEMA))
    output_schema: dict[str, Any] = field(default_factory=lambda: dict(ANY_OBJECT_SCHEMA))
    errors: tuple[str, ...] = ()
    raw_config_keys: tuple[str, ...] = ()
    check_config: Callable[[dict[str, Any]], list[ConfigIssue]] | None = None
    credential_fields: tuple[str, ...] = ()
    # [{"title": ..., "config": {...}, "output": {...}}]: shown in the catalog, checked at registration.
    examples: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not TASK_ID_RE.fullmatch(self.id) or len(self.id) > TASK_ID_MAX_LENGTH:
            raise ValueError(
                f"task type id {self.id!r} is not valid: dotted names of letters, digits, '_' or '-',"
                f" at most {TASK_ID_MAX_LENGTH} characters"
            )
        if not callable(self.handler):
            raise TypeError(f"task type {self.id}: handler is not callable")
        if not self.name:
            object.__setattr__(self, "name", self.id)
        for attr in ("config_schema", "input_schema", "output_schema"):
            schema = getattr(self, attr)
            if schema is None:
                object.__setattr__(self, attr, dict(ANY_OBJECT_SCHEMA))
                continue
            if not isinstance(schema, dict):
                raise TypeError(f"task type {self.id}: {attr} is not a JSON Schema object")
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise ValueError(f"task type {self.id}: {attr} is not a valid JSON Schema: {exc.message}") from None
        errors = (self.errors,) if isinstance(self.errors, str) else tuple(self.errors)
        for name in errors:
            problem = error_name_problem(name)
            if problem:
                raise ValueError(f"task type {self.id}: {problem}")
        object.__setattr__(self, "errors", errors)
        raw = (self.raw_config_keys,) if isinstance(self.raw_config_keys, str) else tuple(self.raw_config_keys)
        object.__setattr__(self, "raw_config_keys", raw)
        object.__setattr__(self, "examples", tuple(copy.deepcopy(e) for e in self.examples))

    def manifest(self) -> dict[str, Any]:
        """Catalog entry (the workflowdev plugin catalog shape); schemas are deep copies."""
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "inputSchema": copy.deepcopy(self.input_schema),
            "outputSchema": copy.deepcopy(self.output_schema),
            "configSchema": copy.deepcopy(self.config_schema),
            "errors": list(self.errors),
            "examples": copy.deepcopy(list(self.examples)),
        }


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a step's config: ``path`` like ``config.values.x`` or ``config.headers[0]``."""

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class UnknownTaskType(KeyError):
    def __init__(self, task_id: str):
        super().__init__(task_id)
        self.task_id = task_id

    def __str__(self) -> str:
        return f"unknown task type '{self.task_id}'"


# --------------------------------------------------------------------------- registry


class TaskRegistry:
    def __init__(self) -> None:
        self._types: dict[str, TaskType] = {}
        self._validators: dict[str, Draft202012Validator] = {}

    # registration -------------------------------------------------------------

    def register(self, task_type: TaskType) -> TaskType:
        if not isinstance(task_type, TaskType):
            raise TypeError("register() takes a TaskType")
        if task_type.id in self._types:
            raise ValueError(f"task type '{task_type.id}' is already registered")
        self._types[task_type.id] = task_type
        self._validators[task_type.id] = Draft202012Validator(task_type.config_schema)
        problems = _example_problems(self, task_type)
        if problems:
            del self._types[task_type.id], self._validators[task_type.id]
            raise ValueError(f"task type {task_type.id}: {problems[0]}")
        return task_type

    def task(
        self,
        id: str,
        *,
        name: str | None = None,
        category: str = "custom",
        description: str = "",
        config_schema: dict[str, Any] | None = None,
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        errors: tuple[str, ...] | list[str] = (),
        raw_config_keys: tuple[str, ...] | list[str] = (),
        check_config: Callable[[dict[str, Any]], list[ConfigIssue]] | None = None,
        examples: tuple[dict[str, Any], ...] | list[dict[str, Any]] = (),
    ) -> Callable[[Callable[[TaskContext], dict[str, Any] | None]], Callable[[TaskContext], dict[str, Any] | None]]:
        """Decorator: ``@registry.task("billing.charge", config_schema=...)``; returns the function unchanged.

        ``description`` defaults to the function's docstring.
        """

        def decorate(handler):
            self.register(
                TaskType(
                    id=id,
                    handler=handler,
                    name=name or id,
                    category=category,
                    description=description or (handler.__doc__ or "").strip(),
                    config_schema=_or_any_object(config_schema),
                    input_schema=_or_any_object(input_schema),
                    output_schema=_or_any_object(output_schema),
                    errors=tuple(errors),
                    raw_config_keys=tuple(raw_config_keys),
                    check_config=check_config,
                    examples=tuple(examples),
                )
            )
            return handler

        return decorate

    # lookup -------------------------------------------------------------------

    def get(self, task_id: str) -> TaskType:
        try:
            return self._types[task_id]
        except (KeyError, TypeError):
            raise UnknownTaskType(task_id) from None

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._types

    def __len__(self) -> int:
        return len(self._types)

    def __iter__(self) -> Iterator[TaskType]:
        return iter(self._types[i] for i in self.ids())

    def ids(self) -> list[str]:
        """Registered ids, sorted."""
        return sorted(self._types)

    def manifest(self, task_id: str) -> dict[str, Any]:
        return self.get(task_id).manifest()

    def manifests(self, category: str | None = None) -> list[dict[str, Any]]:
        """All manifests (of one category, when given), sorted by id."""
        return [self._types[i].manifest() for i in self.ids()
                if category is None or self._types[i].category == category]

    def categories(self) -> dict[str, int]:
        """Each category with the number of task types in it, sorted by name."""
        counts: dict[str, int] = {}
        for task_type in self._types.values():
            counts[task_type.category] = counts.get(task_type.category, 0) + 1
        return dict(sorted(counts.items()))

    # validation ---------------------------------------------------------------

    def validate_config(self, task_id: str, config: Any) -> list[ConfigIssue]:
        """Every problem in a step's (unrendered) config, in a stable order.

        Schema errors (Draft 2020-12), malformed placeholders, then the task's own
        ``check_config``. Errors about values a placeholder will fill in at run time are not
        reported: ``"{{ delay }}"`` where a number is expected is fine here, and checked again
        after rendering by ``run``. Raises UnknownTaskType for an unknown id.
        """
        task_type = self.get(task_id)
        if config is None:
            config = {}
        if not isinstance(config, dict):
            return [ConfigIssue("config", "config must be an object")]
        issues = self._schema_issues(task_type, config, allow_placeholders=True)
        templated = {k: v for k, v in config.items() if k not in task_type.raw_config_keys}
        for location, message in templating.placeholder_errors(templated, "config"):
            issues.append(ConfigIssue(location, message))
        if task_type.check_config is not None and not issues:
            issues.extend(task_type.check_config(config))
        return issues

    def _schema_issues(self, task_type: TaskType, config: dict, *, allow_placeholders: bool) -> list[ConfigIssue]:
        validator = self._validators[task_type.id]
        found = []
        for error in validator.iter_errors(config):
            path = list(error.absolute_path)
            if allow_placeholders and not (path and path[0] in task_type.raw_config_keys):
                value = error.instance
                if templating.is_single_placeholder(value):
                    continue
                if (
                    isinstance(value, str)
                    and error.validator in _STRING_VALIDATORS
                    and templating.has_placeholder(value)
                ):
                    continue
            found.append(_issue_from_error(error, path, redact=not allow_placeholders))
        found.sort(key=lambda item: (item[0], item[1].message))
        return [issue for _, issue in found]

    # running ------------------------------------------------------------------

    def credential_references(self, task_id: str, config: Any) -> list[tuple[str, str]]:
        """(location, name) of each credential the config names (name "" when malformed)."""
        from chalicelib.tasks.credentials import references

        task_type = self.get(task_id)
        return references(config, raw_keys=task_type.raw_config_keys, credential_fields=task_type.credential_fields)

    def render_config(self, task_id: str, config: dict[str, Any] | None, data: Any,
                      secrets: dict[str, str] | None = None) -> dict[str, Any]:
        """The config with placeholders filled from ``data`` and ``secrets`` (raw_config_keys left as they are)."""
        task_type = self.get(task_id)
        config = config or {}
        if not isinstance(config, dict):
            raise StepError(INVALID_CONFIG, "config: config must be an object")
        rendered = {}
        for key, value in config.items():
            if key in task_type.raw_config_keys:
                rendered[key] = copy.deepcopy(value)
            else:
                rendered[key] = templating.render(value, data, templating.format_location("config", [key]), secrets)
        return rendered

    def run(self, task_id: str, ctx: TaskContext) -> dict[str, Any]:
        """Render and validate the config, call the handler, check its result.

        Raises StepError("Stepflow.TemplateError"), StepError("Stepflow.InvalidConfig"),
        StepError("Stepflow.InvalidOutput"), any StepError the handler raises, and lets any
        other handler exception through unchanged (the runner decides what it means).
        The handler gets ``dataclasses.replace(ctx, config=<rendered>)``; log/emit/events are shared.
        """
        task_type = self.get(task_id)
        rendered = self.render_config(task_id, ctx.config, ctx.input, ctx.secrets)
        issues = self._schema_issues(task_type, rendered, allow_placeholders=False)
        if issues:
            text = "; ".join(f"{issue.path}: {issue.message}" for issue in issues)
            raise StepError(INVALID_CONFIG, _truncate(text), details={"issues": [i.to_dict() for i in issues]})
        result = task_type.handler(dataclasses.replace(ctx, config=rendered))
        if result is None:
            return {}
        if not isinstance(result, dict):
            raise StepError(
                INVALID_OUTPUT, f"task type {task_id} returned {type(result).__name__}; a task returns an object"
            )
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise StepError(INVALID_OUTPUT, f"task type {task_id} returned a value that is not JSON: {exc}") from None
        return result


def _issue_from_error(error: Any, path: list, *, redact: bool = False) -> tuple[tuple, ConfigIssue]:
    message = error.message
    if redact:
        # Rendered config holds instance data; keep it out of error causes:
        # "'jane@x.test' is not of type 'integer'" -> "value is not of type 'integer'".
        shown = repr(error.instance)
        if message.startswith(shown):
            message = "value" + message[len(shown) :]
    # "'url' is a required property" reads better pointed at config.url.
    if error.validator == "required" and isinstance(error.instance, dict):
        for name in error.validator_value:
            if name not in error.instance and message == f"{name!r} is a required property":
                path = [*path, name]
                message = "is required"
                break
    sort_key = tuple((1, str(p)) if isinstance(p, str) else (0, p) for p in path)
    return (sort_key, str(error.validator)), ConfigIssue(templating.format_location("config", path), message)


def _example_problems(registry: TaskRegistry, task_type: TaskType) -> list[str]:
    """Each example's config must pass the type's own checks: a catalog example is something to copy."""
    problems = []
    for index, example in enumerate(task_type.examples):
        if not isinstance(example, dict) or not isinstance(example.get("config"), dict):
            problems.append(f"examples[{index}] needs a 'config' object")
            continue
        for issue in registry.validate_config(task_type.id, example["config"]):
            problems.append(f"examples[{index}].{issue.path}: {issue.message}")
    return problems


def _truncate(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def default_registry(*, http_client: Any = None, conditions: Any = None, aws: Any = None,
                     workflows: Any = None) -> TaskRegistry:
    """A new registry with the built-in catalog.

    ``http_client`` (an ``HttpClient``) lets the app plug an egress policy into http.request;
    ``conditions`` (an object with ``parse_condition`` and ``evaluate``) replaces the lazily
    imported ``chalicelib.core.conditions`` for data.assert; ``aws`` (``aws(service) -> boto3 client``) runs
    the aws.* and notify.* types, ``workflows`` (a ``ChildWorkflows``) workflow.start; without them those
    types fail with ``Stepflow.NotConfigured``.
    """
    from chalicelib.tasks.builtin import register_builtins

    registry = TaskRegistry()
    register_builtins(registry, http_client=http_client, conditions=conditions, aws=aws, workflows=workflows)
    return registry
