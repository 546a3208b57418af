"""Continuing a completed run with more input (InstanceService's part, mixed into it): a new instance of
the same workflow that starts from the completed one's final data with the new input laid over it,
linked both ways (`continued_from`, `continued_by`)."""

from __future__ import annotations

from typing import Any

from chalicelib.core.definition_keys import instance_key
from chalicelib.errors import Conflict
from chalicelib.service.requests import StartInstance


class RunContinuation:
    """Uses InstanceService's _record, _refresh, _store, _definitions and start."""

    _store: Any
    _definitions: Any
    _record: Any
    _refresh: Any
    start: Any

    def continue_run(self, instance_id: str, input_data: dict[str, Any], user_id: str | None = None) -> dict[str, Any]:
        """The new instance. Only a completed instance continues (a failed one resumes, or is retried).

        Its input is the completed run's final data (`output`) with `input_data`'s keys laid over it. The
        workflow's input_schema is not applied: it describes what a starter supplies, and the data carries
        what the earlier steps added. Same tenant, webhook and origin as the original; the same
        correlation_id, which tags related instances.
        """
        from chalicelib.service.instances import _pin_of  # the retry's rule: the same pin

        record = self._refresh(self._record(instance_id))
        if record["status"] != "completed":
            raise Conflict(f"only a completed instance can be continued; this one is {record['status']}"
                           + (" (resume or retry it instead)" if record["status"] in ("failed", "canceled") else ""))
        data = {**(record.get("output") or record.get("context") or {}), **input_data}
        request = StartInstance(definition_name=record["definition_name"], namespace=record.get("namespace"),
                                input_data=data, user_id=user_id or record.get("created_by"),
                                tenant_id=record.get("tenant_id"), correlation_id=record.get("correlation_id"),
                                webhook_url=record.get("webhook_url"), origin_instance=record.get("origin_instance"),
                                origin_zone=record.get("origin_zone"), origin_tenant_id=record.get("origin_tenant_id"),
                                origin_reference=record.get("origin_reference"), **_pin_of(record))
        view, _ = self.start(request, definition=self._definitions.get(instance_key(record)), check_input=False)
        self._store.update(view["id"], {"continued_from": instance_id})
        self._store.update(instance_id, {"continued_by": view["id"]})
        return {**view, "continued_from": instance_id}
