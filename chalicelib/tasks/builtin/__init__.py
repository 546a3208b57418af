"""The built-in task catalog; ``default_registry()`` registers all of it."""

from __future__ import annotations

from typing import Any

from chalicelib.tasks.builtin import (
    aws_services,
    data_assert,
    data_set,
    http_request,
    json_ops,
    notify,
    util_log,
    util_sleep,
    workflow_start,
)

BUILTIN_MODULES = (util_log, util_sleep, data_set, data_assert, http_request, json_ops, notify, aws_services,
                   workflow_start)


def register_builtins(registry: Any, *, http_client: Any = None, conditions: Any = None, aws: Any = None,
                      workflows: Any = None) -> None:
    """``aws``: an ``AwsAccess`` (``clients(service)`` and the service's own ``reserved`` function names)."""
    util_log.register(registry)
    util_sleep.register(registry)
    data_set.register(registry)
    data_assert.register(registry, conditions=conditions)
    http_request.register(registry, client=http_client)
    json_ops.register(registry)
    notify.register(registry, aws=getattr(aws, "clients", None), http_client=http_client)
    aws_services.register(registry, aws=getattr(aws, "clients", None), reserved_functions=getattr(aws, "reserved", None))
    workflow_start.register(registry, workflows=workflows)
