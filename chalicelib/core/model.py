"""Workflow definition model: the steps, edges and policies a user writes, as pydantic types."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

# Step ids become ASL state names (max 80 chars) with short suffixes such as "__fallback",
# so they are kept to 64 characters of a conservative alphabet.
STEP_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,79}$"
DOTTED_PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
FieldName = Annotated[str, Field(max_length=128, pattern=FIELD_PATTERN)]

_DURATION_RE = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)
_SHORT_DURATION_RE = re.compile(r"^(?P<n>\d+)\s*(?P<u>[smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: int | str) -> int:
    """Seconds from an int, an ISO-8601 duration ("PT48H", "P2D") or a short form ("30m", "2d")."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("a duration is a number of seconds or a string like 'PT4H' or '2d'")
    if isinstance(value, int):
        seconds = value
    else:
        text = value.strip()
        short = _SHORT_DURATION_RE.match(text)
        iso = _DURATION_RE.match(text.upper())
        if short:
            seconds = int(short["n"]) * _UNIT_SECONDS[short["u"]]
        elif iso and text.upper() not in ("P", "PT"):
            parts = {k: int(v or 0) for k, v in iso.groupdict().items()}
            seconds = parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
        else:
            raise ValueError(f"'{value}' is not a duration; use seconds, 'PT4H' or '2d'")
    if seconds < 1:
        raise ValueError("a duration must be at least one second")
    return seconds


class _Strict(BaseModel):
    # Unknown fields are errors: a typo such as "depend_on" must not be silently ignored.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@dataclass(frozen=True)
class Edge:
    """A link between two steps; a condition only on edges that leave a gateway."""

    source: str
    target: str
    condition: str | None = None


class InputMapping(_Strict):
    from_step: str = Field(max_length=64)
    from_field: str = Field(max_length=256, pattern=DOTTED_PATH_PATTERN)
    to_field: str = Field(max_length=256, pattern=DOTTED_PATH_PATTERN)


class RetryPolicy(_Strict):
    """max_attempts counts every attempt, the first included (1 = no retry)."""

    max_attempts: int = Field(3, ge=1, le=20)
    # Step Functions takes whole seconds, at least one.
    interval_seconds: int = Field(1, ge=1, le=3600)
    backoff_rate: float = Field(2.0, ge=1.0, le=10.0)
    max_delay_seconds: int | None = Field(None, ge=1, le=86400)


class Fallback(_Strict):
    """A task run in place of the step once its retries are exhausted; its output becomes the step's."""

    task_type: str = Field(max_length=128)
    config: dict[str, Any] = Field(default_factory=dict)


class _StepBase(_Strict):
    id: str = Field(pattern=STEP_ID_PATTERN)
    title: str | None = Field(None, max_length=255)
    description: str | None = Field(None, max_length=1000)
    depends_on: list[str] = Field(default_factory=list, max_length=100)
    # With depends_on, the condition of the edge from a gateway this step depends on.
    condition: str | None = Field(None, max_length=1000)
    # How long the step usually takes: the compiler's series-parallel plan keeps long steps off
    # each other's critical path. Without it every step counts as one unit.
    expected_seconds: float | None = Field(None, ge=0, le=31_536_000)

    @property
    def label(self) -> str:
        return self.title or self.id


class MachineStep(_StepBase):
    type: Literal["machine"] = "machine"
    task_type: str = Field(max_length=128)
    config: dict[str, Any] = Field(default_factory=dict)
    input_mappings: list[InputMapping] = Field(default_factory=list, max_length=100)
    retry: RetryPolicy | None = None
    timeout_seconds: int | None = Field(None, ge=1, le=900)
    fallback: Fallback | None = None

    @field_validator("fallback", mode="before")
    @classmethod
    def _fallback_shorthand(cls, value: Any) -> Any:
        # "fallback": "util.log" is shorthand for {"task_type": "util.log"}.
        return {"task_type": value} if isinstance(value, str) else value


class Escalation(_Strict):
    """What the overdue sweep does with a human task past its due date."""

    action: Literal["reassign", "notify", "complete", "fail"] = "notify"
    assignee: str | None = Field(None, max_length=255)
    assignee_group: str | None = Field(None, max_length=255)
    output: dict[str, Any] | None = None
    error: str | None = Field(None, max_length=64)


# A human step's outcome routes: each becomes an edge whose condition is the route's name.
ROUTE_NAMES = ("on_reject", "on_timeout", "on_error")

# A template's placeholders: `{{ path }}`, as chalicelib/tasks/templating.py reads them.
_PLACEHOLDER_RE = re.compile(r"\{\{([^{}]*)\}\}")


# A placeholder's path as chalicelib/tasks/templating.py reads it: dotted names, list items as .0 or [0].
_TEMPLATE_PATH_RE = re.compile(r"[^.\[\]\s{}]+(?:\[\d+\])*(?:\.[^.\[\]\s{}]+(?:\[\d+\])*)*")


def _placeholders_of_paths(text: str) -> str:
    """`text` if each of its `{{ }}` placeholders names a data path (read when the task opens)."""
    for found in _PLACEHOLDER_RE.findall(text):
        if not _TEMPLATE_PATH_RE.fullmatch(found.strip()):
            raise ValueError(f"'{{{{{found}}}}}' is not a placeholder of a data path (use '{{{{ manager }}}}')")
    return text


class ContextField(_Strict):
    """One thing the decider of a human task sees beside the form: the value at a data `path`, or a
    `template` filled from the data. `label` names it (default: the path)."""

    label: str | None = Field(None, max_length=100)
    path: str | None = Field(None, max_length=256, pattern=DOTTED_PATH_PATTERN)
    template: str | None = Field(None, max_length=1000)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # "amount" is shorthand for {"path": "amount"}.
        return {"path": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> ContextField:
        if (self.path is None) == (self.template is None):
            raise ValueError("a context field needs exactly one of 'path' or 'template'")
        if self.template is not None:
            _placeholders_of_paths(self.template)
        if self.label is None and self.path is None:
            raise ValueError("a template context field needs a 'label'")
        return self

    @property
    def name(self) -> str:
        return self.label or self.path or ""


class Approvals(_Strict):
    """A quorum: the step completes approved once `required` people approved it; it completes rejected as
    soon as the quorum can no longer be met (more than out_of - required rejections; without out_of, the
    first rejection)."""

    required: int = Field(ge=1, le=50)
    of: str | None = Field(None, max_length=255, description="The group whose members decide")
    out_of: int | None = Field(None, ge=1, le=100, description="How many people are asked")

    @model_validator(mode="after")
    def _reachable(self) -> Approvals:
        if self.out_of is not None and self.out_of < self.required:
            raise ValueError("approvals.out_of must be at least approvals.required")
        return self


STARTED_BY = "started_by"  # in distinct_from: the principal who started the instance


class HumanStep(_StepBase):
    type: Literal["human"] = "human"
    form_schema: dict[str, Any] | None = None
    assignee: str | None = Field(None, max_length=255)
    assignee_group: str | None = Field(None, max_length=255)
    candidate_groups: list[str] = Field(default_factory=list, max_length=20)
    priority: int = Field(0, ge=0, le=100)
    due_in: int | None = None
    # The due date from instance data instead: a path to a timestamp ("deadline"), or one with an offset
    # ("{{ submitted_at }} + 2d"); read when the task opens (core/due.py).
    due_at: str | None = Field(None, max_length=300)
    reminder_before: int | None = None
    escalation: Escalation | None = None
    timeout_seconds: int | None = Field(None, ge=1, le=31_536_000)
    heartbeat_seconds: int | None = Field(None, ge=1, le=31_536_000)
    # What the decider sees beside the form, captured from the instance data when the task opens: only
    # these values reach the task view (never the rest of the data).
    context: list[ContextField] = Field(default_factory=list, max_length=30)
    # Where the workflow goes when the task is rejected (its approval field is false), times out (its
    # timeout, or an escalation that fails it), or fails otherwise: a step id each (core/graph.py
    # ROUTES). Without them a timeout or failure fails the instance.
    on_reject: str | None = Field(None, pattern=STEP_ID_PATTERN)
    on_timeout: str | None = Field(None, pattern=STEP_ID_PATTERN)
    on_error: str | None = Field(None, pattern=STEP_ID_PATTERN)
    # What a completion writes into instance data (chalicelib/core/decisions.py): the form's fields, or
    # the whole submission under output_namespace; overwrites names form fields that may replace a value
    # the instance data already holds.
    output_namespace: FieldName | None = None
    overwrites: list[FieldName] = Field(default_factory=list, max_length=100)
    # Multi-person decisions (core/quorum.py): a quorum of approvals, and who may not decide (four-eyes):
    # instance-data paths naming people (e.g. requester) or `started_by`.
    approvals: Approvals | None = None
    distinct_from: list[Annotated[str, Field(max_length=256, pattern=DOTTED_PATH_PATTERN)]] = Field(
        default_factory=list, max_length=10)

    @property
    def routes(self) -> dict[str, str]:
        """The outcome routes it declares: {"on_reject": step id, ...}."""
        return {name: target for name in ROUTE_NAMES if (target := getattr(self, name)) is not None}

    @field_validator("due_in", "reminder_before", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("assignee", "assignee_group")
    @classmethod
    def _who(cls, value: str | None) -> str | None:
        return None if value is None else _placeholders_of_paths(value)

    @field_validator("candidate_groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        return [_placeholders_of_paths(v) for v in value]

    @field_validator("due_at")
    @classmethod
    def _due_expression(cls, value: str | None) -> str | None:
        if value is not None:
            from chalicelib.core.due import parse_due

            parse_due(value)  # ValueError: pydantic reports it at steps[i].due_at
        return value

    @model_validator(mode="after")
    def _one_due_date(self) -> HumanStep:
        if self.due_in is not None and self.due_at is not None:
            raise ValueError("give the due date as one of 'due_in' (from when the task opens) or 'due_at' (from data)")
        return self

    @model_validator(mode="after")
    def _quorum_on_an_approval(self) -> HumanStep:
        from chalicelib.core.quorum import approval_fields

        if self.approvals is not None and approval_fields(self.form_schema) is None:
            raise ValueError("approvals need an approval form: a boolean 'approved' (or '*_approved') field")
        return self


class GatewayStep(_StepBase):
    type: Literal["gateway"] = "gateway"


class TimerStep(_StepBase):
    type: Literal["timer"] = "timer"
    seconds: int | None = Field(None, ge=0, le=31_536_000)
    until: str | None = Field(None, max_length=256, pattern=DOTTED_PATH_PATTERN)

    @model_validator(mode="after")
    def _one_of(self) -> TimerStep:
        if (self.seconds is None) == (self.until is None):
            raise ValueError("a timer needs exactly one of 'seconds' or 'until'")
        return self


class WebhookStep(_StepBase):
    type: Literal["webhook"] = "webhook"
    event_type: str | None = Field(None, max_length=128)
    timeout_seconds: int | None = Field(None, ge=1, le=31_536_000)
    heartbeat_seconds: int | None = Field(None, ge=1, le=31_536_000)
    # A callback body lands under output_namespace (default: the step id); overwrites names payload
    # fields also written at the top level of the instance data.
    output_namespace: FieldName | None = None
    overwrites: list[FieldName] = Field(default_factory=list, max_length=100)


# An event type as senders spell it: "order.paid", "payment:captured", "Shipment-Delivered", or a
# Python event class's qualified name ("__main__.PaymentEvent").
EVENT_TYPE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._:/-]{0,127}$"


class ReceiveStep(_StepBase):
    """Waits for an event of `event_type` sent into the instance (POST /instances/{id}/events) or to
    whichever instance waits for it with the same correlation key (POST /events); the event's data is
    the step's output. An event sent before the step waits is kept for a while and consumed when it does.
    """

    type: Literal["receive"] = "receive"
    event_type: str = Field(max_length=128, pattern=EVENT_TYPE_PATTERN)
    # A template over instance data ("{{ order_id }}", "{{ customer.id }}-{{ order_no }}") rendered when
    # the step starts waiting: only events sent with this key reach it through POST /events.
    correlation_key: str | None = Field(None, min_length=1, max_length=256)
    timeout_seconds: int | None = Field(None, ge=1, le=31_536_000)
    heartbeat_seconds: int | None = Field(None, ge=1, le=31_536_000)
    # As a webhook step's: the event's data lands under output_namespace (default: the step id);
    # overwrites names data fields also written at the top level of the instance data.
    output_namespace: FieldName | None = None
    overwrites: list[FieldName] = Field(default_factory=list, max_length=100)


Step = Annotated[
    MachineStep | HumanStep | GatewayStep | TimerStep | WebhookStep | ReceiveStep,
    Field(discriminator="type"),
]
STEP_TYPES = ("machine", "human", "gateway", "timer", "webhook", "receive")
CALLBACK_TYPES = ("human", "webhook", "receive")


class Definition(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    version: str = Field("1.0.0", min_length=1, max_length=50)
    description: str = Field("", max_length=1000)
    input_schema: dict[str, Any] | None = None
    steps: list[Step] = Field(min_length=1)
    edges: list[Edge] = Field(default_factory=list)
    initial_step: str | None = None
    terminal_steps: list[str] | None = None
    # "exact": a step starts as soon as the steps it depends on have finished (docs/definitions.md,
    # "Scheduling"). "planned": the steps run in one series-parallel plan made from expected_seconds, which
    # saves the gates' transitions but may make a step wait for unrelated work.
    scheduling: Literal["exact", "planned"] = "exact"

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # YAML reads `version: 1.0` as a float; a version is text.
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    def step(self, step_id: str) -> Any:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    @property
    def step_ids(self) -> list[str]:
        return [step.id for step in self.steps]
