"""Task types for machine steps: the registry, config templating and the built-in catalog."""

from chalicelib.tasks.errors import StepError
from chalicelib.tasks.registry import (
    ConfigIssue,
    TaskContext,
    TaskRegistry,
    TaskType,
    UnknownTaskType,
    default_registry,
)

__all__ = [
    "ConfigIssue",
    "StepError",
    "TaskContext",
    "TaskRegistry",
    "TaskType",
    "UnknownTaskType",
    "default_registry",
]
