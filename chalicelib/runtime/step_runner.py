"""The step-runner Lambda: runs one machine step (or its fallback) and returns the new state."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from chalicelib.core.instance_data import get_path, merge_instance_data, set_path
from chalicelib.core.model import MachineStep
from chalicelib.runtime.definitions import RevisionLoader
from chalicelib.tasks.errors import StepError
from chalicelib.tasks.registry import TaskContext, TaskRegistry

MAPPING_ERROR = "Stepflow.MappingError"


class StepRunner:
    def __init__(self, loader: RevisionLoader, registry: TaskRegistry, *,
                 log: Callable[..., None] | None = None, sleep: Callable[[float], None] | None = None):
        self._loader = loader
        self._registry = registry
        self._log = log
        self._sleep = sleep

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """Event from the compiled Task state; returns {"steps", "data"} or raises a named error."""
        loaded = self._loader.load(event["workflow"], event["revision"])
        start_input = event.get("input") or {}
        steps = dict(event.get("steps") or {})
        if event["kind"] == "merge":
            return {"steps": steps, "data": merge_instance_data(start_input, steps, loaded.order)}
        step = loaded.definition.step(event["step"])
        assert isinstance(step, MachineStep)
        data = merge_instance_data(start_input, steps, loaded.order)
        step_input = self._step_input(step, data, steps)
        if event["kind"] == "fallback":
            task_type, config = step.fallback.task_type, step.fallback.config  # type: ignore[union-attr]
            step_input["failure"] = _failure(event.get("failure"))
        else:
            task_type, config = step.task_type, step.config
        ctx = TaskContext(step_id=step.id, execution_id=event.get("execution", ""), config=config, input=step_input,
                          **({"log": self._log} if self._log else {}),
                          **({"sleep": self._sleep} if self._sleep else {}))
        try:
            output = self._registry.run(task_type, ctx)
        except StepError as exc:
            raise exc.as_lambda_exception() from None
        steps[step.id] = output
        return {"steps": steps, "data": merge_instance_data(start_input, steps, loaded.order)}

    @staticmethod
    def _step_input(step: MachineStep, data: dict[str, Any], steps: dict[str, Any]) -> dict[str, Any]:
        step_input = copy.deepcopy(data)
        for mapping in step.input_mappings:
            try:
                value = get_path(steps[mapping.from_step], mapping.from_field)
            except KeyError:
                raise StepError(MAPPING_ERROR, f"input mapping of '{step.id}': step '{mapping.from_step}' produced "
                                f"no '{mapping.from_field}'").as_lambda_exception() from None
            set_path(step_input, mapping.to_field, copy.deepcopy(value))
        return step_input


def _failure(caught: Any) -> dict[str, Any]:
    # Catch puts {"Error", "Cause"} in the state; the fallback sees it as input.failure.
    if isinstance(caught, dict):
        return {"error": caught.get("Error"), "cause": caught.get("Cause")}
    return {"error": None, "cause": None}
