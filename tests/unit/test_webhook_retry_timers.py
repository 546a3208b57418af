"""Completion webhook retries on timers, against in-memory fakes: the timer is set for each retry at its
documented delay, fires at most once per attempt however often it fires, and whatever is lost between a
failed attempt and its timer (an SQS call that fails, a process that dies) is sent by the sweep."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.aws.conditional_update import TransitionRefused
from chalicelib.aws.retry_queue import MAX_DELAY_SECONDS, SqsRetryTimer, delay_seconds, message_body, parse_body
from chalicelib.core.times import iso, parse_iso
from chalicelib.errors import Unavailable
from chalicelib.service.instances import InstanceService
from chalicelib.service.notifications import BACKOFF_SECONDS, SWEEP_GRACE_SECONDS, Notifier

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def to(self, moment: datetime) -> None:
        assert moment >= self.now
        self.now = moment


class Store:
    """The instance store's calls the notifier and the sweep make; None removes an attribute."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.records = {record["id"]: dict(record)}

    def get(self, instance_id: str) -> dict[str, Any] | None:
        found = self.records.get(instance_id)
        return json.loads(json.dumps(found)) if found is not None else None

    def update(self, instance_id: str, changes: dict[str, Any], expect: dict[str, Any] | None = None) -> None:
        item = self.records[instance_id]
        if expect and any(item.get(k) != v for k, v in expect.items()):
            raise TransitionRefused(instance_id)
        for key, value in changes.items():
            if value is None:
                item.pop(key, None)
            else:
                item[key] = value

    def due_notifications(self, upto: str) -> list[dict[str, Any]]:
        return [self.get(i) for i, r in self.records.items()  # type: ignore[misc]
                if r.get("notify_state") == "open" and r["next_notify_at"] <= upto]


class Timer:
    time_scale = 1.0

    def __init__(self) -> None:
        self.given: list[tuple[str, int, datetime]] = []
        self.fail = False

    def schedule(self, instance_id: str, attempt: int, due: datetime) -> None:
        if self.fail:
            raise Unavailable("the webhook retry could not be queued")
        self.given.append((instance_id, attempt, due))


class Receiver:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.arrivals: list[tuple[datetime, str]] = []

    def post(self, clock: Clock) -> Any:
        def post(url: str, body: bytes, headers: dict[str, str]) -> int:
            self.arrivals.append((clock(), headers["X-Stepflow-Attempt"]))
            return 500 if len(self.arrivals) <= self.failures else 204
        return post


def setup(failures: int, timer: Timer | None = None) -> tuple[Notifier, Store, Clock, Receiver, Timer]:
    clock, receiver, timer = Clock(), Receiver(failures), timer or Timer()
    store = Store({"id": "i-1", "tenant_id": "acme", "webhook_url": "https://receiver.example/hook",
                   "definition_name": "flow", "status": "completed"})
    notifier = Notifier(store, receiver.post(clock), lambda tenant: b"secret", clock, timer=lambda: timer)
    return notifier, store, clock, receiver, timer


def sweep(notifier: Notifier, store: Store, clock: Clock) -> int:
    """The sweep's webhook pass, as the overdue sweep runs it."""
    return InstanceService.deliver_notifications(SimpleNamespace(_notifier=notifier, _store=store, _now=clock))  # type: ignore[arg-type]


def fire_when_due(notifier: Notifier, clock: Clock, timer: Timer) -> list[str]:
    """Fires each timer set, in due order, at its due time (as SQS or the local runtime does)."""
    outcomes = []
    while timer.given:
        timer.given.sort(key=lambda g: g[2])
        instance_id, attempt, due = timer.given.pop(0)
        clock.to(max(clock(), due))
        outcomes.append(notifier.retry(instance_id, attempt))
    return outcomes


def test_each_retry_is_timed_at_the_documented_delay_and_sent_when_due():
    notifier, store, clock, receiver, timer = setup(failures=5)
    notifier.notify(store.get("i-1"))  # the first attempt, when the instance ends
    given: list[tuple[int, float]] = []
    while timer.given:
        instance_id, attempt, due = timer.given[0]
        given.append((attempt, (due - clock()).total_seconds()))
        timer.given.pop(0)
        clock.to(due)
        assert notifier.retry(instance_id, attempt) in ("sent", "failed")
    assert given == [(n + 2, float(delay)) for n, delay in enumerate(BACKOFF_SECONDS)]
    attempts = store.get("i-1")["notifications"]  # type: ignore[index]
    assert [(a["attempt"], a["ok"]) for a in attempts] == [(1, False), (2, False), (3, False), (4, False),
                                                          (5, False), (6, True)]
    # Every attempt says when the next one is due, and none came before it.
    for earlier, later in zip(attempts, attempts[1:], strict=False):
        assert parse_iso(later["at"]) >= parse_iso(earlier["next_attempt_at"])
    assert [a for _, a in receiver.arrivals] == ["1", "2", "3", "4", "5", "6"]
    assert "notify_state" not in store.records["i-1"] and "next_attempt_at" not in attempts[-1]


def test_the_last_failure_sets_no_timer_and_the_webhook_is_given_up():
    notifier, store, clock, receiver, timer = setup(failures=99)
    given_up: list[bool] = []
    notifier._observe = lambda tenant, ok, gave_up: given_up.append(gave_up)
    notifier.notify(store.get("i-1"))
    assert fire_when_due(notifier, clock, timer) == ["failed"] * len(BACKOFF_SECONDS)
    assert len(receiver.arrivals) == len(BACKOFF_SECONDS) + 1
    assert given_up == [False] * len(BACKOFF_SECONDS) + [True]
    assert "notify_state" not in store.records["i-1"] and timer.given == []


def test_a_timer_that_fires_early_is_set_again_and_sends_nothing():
    notifier, store, clock, receiver, timer = setup(failures=1)
    notifier.notify(store.get("i-1"))
    (_, attempt, due), = timer.given
    timer.given.clear()
    clock.to(due - timedelta(seconds=3))
    assert notifier.retry("i-1", attempt) == "waiting"
    assert timer.given == [("i-1", attempt, parse_iso(iso(due)))] and len(receiver.arrivals) == 1
    assert fire_when_due(notifier, clock, timer) == ["sent"]


def test_a_duplicate_or_late_timer_sends_nothing():
    notifier, store, clock, receiver, timer = setup(failures=1)
    notifier.notify(store.get("i-1"))
    (_, attempt, due), = timer.given
    clock.to(due)
    assert notifier.retry("i-1", attempt) == "sent"
    assert notifier.retry("i-1", attempt) == "stale"  # SQS delivered the message twice
    assert notifier.retry("i-1", attempt - 1) == "stale"
    assert notifier.retry("gone", 2) == "stale"
    assert len(receiver.arrivals) == 2


def test_the_sweep_leaves_a_due_retry_to_its_timer_for_a_grace_period_and_never_sends_it_twice():
    notifier, store, clock, receiver, timer = setup(failures=1)
    notifier.notify(store.get("i-1"))
    (_, attempt, due), = timer.given
    clock.to(due + timedelta(seconds=1))
    assert sweep(notifier, store, clock) == 0  # due, but the timer's to send
    assert notifier.retry("i-1", attempt) == "sent"
    clock.to(due + timedelta(seconds=SWEEP_GRACE_SECONDS + 1))
    assert sweep(notifier, store, clock) == 0 and len(receiver.arrivals) == 2


def test_a_timer_that_could_not_be_set_is_made_up_for_by_the_sweep():
    timer = Timer()
    notifier, store, clock, receiver, timer = setup(failures=1, timer=timer)
    timer.fail = True  # SQS refuses the message after the failed attempt was recorded
    notifier.notify(store.get("i-1"))
    record = store.get("i-1")
    assert record["notify_state"] == "open" and timer.given == []  # type: ignore[index]
    clock.to(parse_iso(record["next_notify_at"]) + timedelta(seconds=SWEEP_GRACE_SECONDS))  # type: ignore[index]
    assert sweep(notifier, store, clock) == 1
    assert [a for _, a in receiver.arrivals] == ["1", "2"]
    assert store.get("i-1")["notifications"][-1]["ok"] is True  # type: ignore[index]


def test_a_process_that_dies_before_setting_the_timer_leaves_the_retry_to_the_sweep():
    notifier, store, clock, receiver, timer = setup(failures=1)

    class Died(BaseException):
        pass

    def die(*args: Any) -> None:
        raise Died

    timer.schedule = die  # type: ignore[method-assign]
    with pytest.raises(Died):
        notifier.notify(store.get("i-1"))
    assert store.get("i-1")["notify_state"] == "open"  # type: ignore[index]
    clock.to(clock() + timedelta(seconds=BACKOFF_SECONDS[0] + SWEEP_GRACE_SECONDS))
    assert sweep(notifier, store, clock) == 1 and len(receiver.arrivals) == 2


def test_a_sender_that_dies_mid_attempt_is_taken_over_after_its_lease_at_least_once():
    """The timer's sender claimed the attempt and died (before or after posting): SQS delivers the message
    again, which waits out the claim and sends the attempt (the receiver may see the same attempt twice:
    the at-least-once contract, with the same X-Stepflow-Attempt)."""
    notifier, store, clock, receiver, timer = setup(failures=1)
    notifier.notify(store.get("i-1"))
    (_, attempt, due), = timer.given
    timer.given.clear()
    clock.to(due)
    record = store.get("i-1")
    notifier._post = lambda *a: (_ for _ in ()).throw(KeyboardInterrupt)  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        notifier.notify(record)  # type: ignore[arg-type]
    notifier._post = receiver.post(clock)
    assert notifier.retry("i-1", attempt) == "waiting"  # claimed: comes back when the claim lapses
    assert fire_when_due(notifier, clock, timer) == ["sent"]
    assert [a for _, a in receiver.arrivals] == ["1", "2"]


def test_a_timer_longer_than_sqs_allows_is_queued_for_the_maximum_and_comes_back():
    now = START
    assert delay_seconds(now + timedelta(seconds=9.2), now) == 10  # never short of the due time
    assert delay_seconds(now + timedelta(hours=1), now) == MAX_DELAY_SECONDS == 900
    assert delay_seconds(now - timedelta(seconds=5), now) == 0
    sent: list[dict[str, Any]] = []
    client = SimpleNamespace(send_message=lambda **kw: sent.append(kw))
    SqsRetryTimer(client, "https://sqs.example/q", lambda: now).schedule("i-1", 6, now + timedelta(hours=1))
    assert sent == [{"QueueUrl": "https://sqs.example/q", "DelaySeconds": 900,
                     "MessageBody": message_body("i-1", 6, now + timedelta(hours=1))}]
    assert parse_body(sent[0]["MessageBody"]) == ("i-1", 6)

    def refuse(**kw: Any) -> None:
        raise OSError("connection reset")

    with pytest.raises(Unavailable):
        SqsRetryTimer(SimpleNamespace(send_message=refuse), "q", lambda: now).schedule("i-1", 2, now)


@pytest.mark.parametrize("body", ["", "[]", "{}", '{"instance_id": 3, "attempt": 2}',
                                  '{"instance_id": "i", "attempt": true}', '{"instance_id": "", "attempt": 2}'])
def test_a_malformed_retry_message_is_recognised(body):
    assert parse_body(body) is None
