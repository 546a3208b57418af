"""How an instance's executions are named: the instance id, then `--<n>` for its n-th later run."""

from __future__ import annotations

RUN_SEPARATOR = "--"  # instance ids are uuids, which never contain "--"


def execution_name(instance_id: str, run: int) -> str:
    return instance_id if run == 0 else f"{instance_id}{RUN_SEPARATOR}{run}"


def run_of_execution(execution: str | None) -> tuple[str, str]:
    """(instance id, execution name) of an execution ARN (or name); ("", "") for none."""
    name = str(execution or "").rsplit(":", 1)[-1]
    return name.split(RUN_SEPARATOR, 1)[0], name
