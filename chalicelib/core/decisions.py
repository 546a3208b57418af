"""Declared writes: what a human, webhook or receive step may put into instance data, checked before it completes.

A decider answers a question; it must not be able to change the question. So a completion writes only
what the definition declares for its step, and never replaces a value the workflow already held when
the task opened (its snapshot), unless the definition lists that field in `overwrites`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.core.model import HumanStep, ReceiveStep, WebhookStep


@dataclass(frozen=True)
class Writes:
    """What one step writes.

    fields: the keys a submission may have (a human step's form properties); None: any key, which is
    only ever the case under a namespace. namespace: the key the whole submission is kept under (None:
    its fields are written at the top level). overwrites: fields written at the top level even when
    the instance data already holds them (and, under a namespace, also copied to the top level).
    """

    fields: frozenset[str] | None
    namespace: str | None = None
    overwrites: frozenset[str] = frozenset()

    @classmethod
    def human(cls, form_schema: Mapping[str, Any] | None, namespace: str | None = None,
              overwrites: Iterable[str] = ()) -> Writes:
        properties = (form_schema or {}).get("properties")
        fields = frozenset(properties) if isinstance(properties, Mapping) else frozenset()
        # A step without form fields but with a namespace may submit any key: all of it stays under the namespace.
        return cls(None if namespace and not fields else fields, namespace, frozenset(overwrites))

    @classmethod
    def webhook(cls, step_id: str, namespace: str | None = None, overwrites: Iterable[str] = ()) -> Writes:
        # A callback body has no form: it always lands under a namespace, the step id unless declared.
        return cls(None, namespace or step_id, frozenset(overwrites))

    @classmethod
    def of_task(cls, record: Mapping[str, Any]) -> Writes:
        """From a stored task (`as_record` set when it was registered); older records get the defaults."""
        namespace, overwrites = record.get("output_namespace"), record.get("overwrites") or ()
        if record.get("kind") in ("webhook", "receive"):  # a received event's data has no form either
            return cls.webhook(record["step_name"], namespace, overwrites)
        return cls.human(record.get("form_schema"), namespace, overwrites)

    def as_record(self) -> dict[str, Any]:
        """The task-record attributes `of_task` reads (the fields come from the record's form_schema)."""
        return {"output_namespace": self.namespace, "overwrites": sorted(self.overwrites)}

    def top_level(self, key: str) -> bool:
        """Whether a submitted key is written at the top level of the instance data."""
        return self.namespace is None or key in self.overwrites

    def issues(self, output: Mapping[str, Any], decided: Iterable[str]) -> list[dict[str, str]]:
        """Every key of the submission this step may not write, sorted by location (empty: it may)."""
        decided = set(decided)
        issues = []
        if self.namespace is not None and self.namespace in decided:
            issues.append({"location": "output_data", "message":
                           f"this step keeps its output under '{self.namespace}', which the instance data "
                           "already held when the task opened; it cannot be completed without replacing it"})
        for key in sorted(output):
            if self.fields is not None and key not in self.fields:
                allowed = ", ".join(sorted(self.fields)) or "no fields"
                issues.append({"location": f"output_data.{key}",
                               "message": f"'{key}' is not a field this step writes (its form has: {allowed})"})
            elif self.top_level(key) and key in decided and key not in self.overwrites:
                issues.append({"location": f"output_data.{key}",
                               "message": f"'{key}' was decided before this task opened; "
                                          "this step may not change it"})
        return issues

    def recorded(self, output: Mapping[str, Any]) -> dict[str, Any]:
        """The step's output as it enters the instance data (checked with `issues` first)."""
        if self.namespace is None:
            return dict(output)
        lifted = {key: output[key] for key in sorted(self.overwrites) if key in output}
        return {self.namespace: dict(output), **lifted}


def decided_fields(snapshot: Mapping[str, Any] | None, step_id: str) -> set[str]:
    """The top-level fields instance data held when the task opened, not counting this step's own.

    The snapshot holds the start input and every finished step's output; what this same step wrote on
    an earlier pass is its own and may be written again.
    """
    snapshot = snapshot or {}
    fields = set(snapshot.get("input") or {})
    for other, output in (snapshot.get("steps") or {}).items():
        if other != step_id and isinstance(output, Mapping):
            fields |= set(output)
    return fields


def writes_of_step(step: HumanStep | WebhookStep | ReceiveStep) -> Writes:
    """The declared writes of a step of the definition."""
    if isinstance(step, WebhookStep | ReceiveStep):
        return Writes.webhook(step.id, step.output_namespace, step.overwrites)
    return Writes.human(step.form_schema, step.output_namespace, step.overwrites)
