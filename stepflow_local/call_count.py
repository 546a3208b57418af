"""Counts the AWS calls the app makes (a botocore before-call hook on its clients), per operation, and
the DynamoDB items those calls read: what the call-budget test and the benchmark measure."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.aws.clients import client

APP_SERVICES = ("dynamodb", "stepfunctions", "events")


class CallCounter:
    """Counts calls made in the thread that attached it (a request served by chalice's test client, or
    the sweep), not those of the emulated Lambda functions running beside it."""

    def __init__(self, region: str):
        self.region = region
        self.calls: Counter[str] = Counter()
        self.items_read = 0
        self._thread = threading.current_thread()
        self._attached: list[Any] = []

    def attach(self) -> CallCounter:
        for service in APP_SERVICES:
            events = client(service, self.region).meta.events
            events.register("before-call", self._before)
            events.register("after-call", self._after)
            self._attached.append(events)
        return self

    def detach(self) -> None:
        for events in self._attached:
            events.unregister("before-call", self._before)
            events.unregister("after-call", self._after)
        self._attached.clear()

    def _mine(self) -> bool:
        return threading.current_thread() is self._thread

    def _before(self, model: Any, **_: Any) -> None:
        if self._mine():
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def _after(self, model: Any, parsed: Any = None, **_: Any) -> None:
        if not self._mine() or not isinstance(parsed, dict):
            return
        if "Items" in parsed:
            self.items_read += len(parsed["Items"])
        elif "Item" in parsed:
            self.items_read += 1
        elif "Responses" in parsed and isinstance(parsed["Responses"], dict):
            self.items_read += sum(len(v) for v in parsed["Responses"].values())

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def scans(self) -> int:
        return sum(n for op, n in self.calls.items() if op.endswith(".Scan"))

    def reset(self) -> None:
        self.calls.clear()
        self.items_read = 0

    @contextmanager
    def counting(self) -> Iterator[CallCounter]:
        """Counts from zero within the block."""
        self.reset()
        yield self


@contextmanager
def counted(region: str) -> Iterator[CallCounter]:
    counter = CallCounter(region).attach()
    try:
        yield counter
    finally:
        counter.detach()
