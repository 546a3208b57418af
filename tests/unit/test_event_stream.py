"""The pure event-log rules: seq keys, cursors, the settle window, NDJSON and SSE."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.core import event_stream as es
from chalicelib.core.runs import run_of_execution

T0 = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def seq(moment: datetime, suffix: str = "0" * 16) -> str:
    return es.make_seq(moment, suffix)


def test_seq_is_fixed_width_and_sorts_by_time():
    a = seq(T0, "f" * 16)
    b = seq(T0 + timedelta(microseconds=1), "0" * 16)
    c = seq(T0 + timedelta(days=400))
    assert a == "20250102T030405.678901Z-" + "f" * 16
    assert len(a) == len(b) == len(c)
    assert a < b < c
    assert es.SEQ_RE.fullmatch(a)
    assert es.seq_moment(a) == T0
    assert es.at_of(a) == "2025-01-02T03:04:05.678Z"
    assert es.FLOOR < a  # and the attempt counters ('!attempt#...') sort below the floor
    assert "!attempt#x" < es.FLOOR


def test_clock_never_repeats_or_goes_back():
    moments = iter([T0, T0, T0 - timedelta(seconds=1), T0 + timedelta(seconds=1)])
    clock = es.SeqClock(lambda: next(moments))
    got = [clock.next() for _ in range(4)]
    assert got[:3] == [T0, T0 + timedelta(microseconds=1), T0 + timedelta(microseconds=2)]
    assert got[3] == T0 + timedelta(seconds=1)


def test_clock_is_unique_across_threads():
    clock = es.SeqClock(lambda: T0)
    seen: list[datetime] = []
    lock = threading.Lock()

    def take():
        mine = [clock.next() for _ in range(200)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 800


@pytest.mark.parametrize("value", ["", "  ", None])
def test_no_cursor(value):
    assert es.parse_cursor(value) is None


@pytest.mark.parametrize("value", ["5", "20250102T030405.678901Z", "20250102T030405.678901Z-XYZ",
                                   "!attempt#run#step#machine", "20250102T030405.678901Z-" + "0" * 16 + "x"])
def test_bad_cursors_are_refused(value):
    with pytest.raises(es.BadCursor):
        es.parse_cursor(value)


def test_a_cursor_is_a_seq():
    assert es.parse_cursor(" " + seq(T0) + " ") == seq(T0)


def events(*moments: datetime) -> list[dict]:
    return [{"seq": seq(m, f"{i:016x}"), "type": "t", "data": {}} for i, m in enumerate(moments)]


def test_while_running_only_settled_events_are_handed_out():
    now = T0
    upto = es.horizon(now, 1.0, ended=False)
    log = events(T0 - timedelta(seconds=3), T0 - timedelta(seconds=2), T0 - timedelta(milliseconds=500), T0)
    chosen = es.select(log, 10, upto)
    assert [e["seq"] for e in chosen.events] == [e["seq"] for e in log[:2]]
    assert chosen.held_back == log[2]["seq"] and not chosen.more
    assert es.settles_at(chosen.held_back, 1.0) == T0 + timedelta(milliseconds=500)


def test_once_ended_everything_is_handed_out():
    assert es.horizon(T0, 1.0, ended=True) is None
    log = events(T0 - timedelta(seconds=1), T0)
    assert es.select(log, 10, None).events == log


def test_a_full_page_says_there_is_more():
    log = events(*(T0 - timedelta(seconds=10 - i) for i in range(3)))
    page = es.select(log, 2, es.horizon(T0, 1.0, ended=False))
    assert page.events == log[:2] and page.more and page.held_back is None
    exact = es.select(log[:2], 2, None)
    assert exact.events == log[:2] and not exact.more


def test_a_full_page_before_an_unsettled_event_is_not_more():
    log = events(T0 - timedelta(seconds=5), T0 - timedelta(seconds=4), T0)
    page = es.select(log, 2, es.horizon(T0, 1.0, ended=False))
    assert len(page.events) == 2 and not page.more and page.held_back == log[2]["seq"]


def test_custom_types_cannot_pose_as_stepflow_events():
    assert es.custom_type("order.checked") == "order.checked"
    assert es.custom_type("step.succeeded") == "custom.step.succeeded"
    assert es.custom_type("instance.ended") == "custom.instance.ended"
    assert es.custom_type("bad\nname") == "custom.bad_name"
    assert len(es.custom_type("x" * 500)) <= es.MAX_TYPE_LENGTH


def test_data_is_bounded_and_json():
    assert es.bounded_data(None) == {}
    assert es.bounded_data([1, 2]) == {"value": [1, 2]}
    assert es.bounded_data({"when": T0}) == {"when": str(T0)}
    big = es.bounded_data({"x": "y" * (es.MAX_DATA_BYTES + 1)})
    assert big["truncated"] is True and big["bytes"] > es.MAX_DATA_BYTES


def record(step: str | None = "build") -> dict:
    return {"instance_id": "i", "seq": seq(T0), "type": "step.succeeded", "at": "2025-01-02T03:04:05.678Z",
            "step": step, "data": {"output": {"text": "a\nb"}}}


def test_ndjson_is_one_object_per_line():
    text = es.ndjson([record(), record(step=None)])
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == 3
    first, second = (json.loads(line) for line in lines[:2])
    assert first == {"seq": seq(T0), "type": "step.succeeded", "at": "2025-01-02T03:04:05.678Z", "step": "build",
                     "data": {"output": {"text": "a\nb"}}}
    assert "step" not in second and "instance_id" not in second
    assert es.ndjson([]) == ""


def test_sse_frames():
    text = es.sse([record()], retry_ms=1500)
    assert text.startswith("retry: 1500\n\n")
    frame = text[len("retry: 1500\n\n"):]
    assert frame.endswith("\n\n")
    fields = frame.rstrip("\n").split("\n")
    assert fields[0] == f"id: {seq(T0)}" and fields[1] == "event: step.succeeded"
    assert fields[2].startswith("data: ") and len(fields) == 3  # the newline in the data stays escaped
    assert json.loads(fields[2][len("data: "):])["data"]["output"]["text"] == "a\nb"
    assert es.sse([], retry_ms=None) == ""


def test_sse_fields_never_break_lines():
    frame = es.sse_frame({**record(), "type": "evil\r\nevent: x"})
    assert frame.count("\n") == 4  # id, event, data and the blank line


def test_run_of_execution():
    arn = "arn:aws:states:us-east-1:123:execution:machine:5d0c7b54-6a55-4a5e-9a2e-3f1f4c3c9b71--2"
    assert run_of_execution(arn) == ("5d0c7b54-6a55-4a5e-9a2e-3f1f4c3c9b71",
                                        "5d0c7b54-6a55-4a5e-9a2e-3f1f4c3c9b71--2")
    assert run_of_execution("arn:aws:states:r:1:execution:m:abc") == ("abc", "abc")
    assert run_of_execution(None) == ("", "")


def test_callback_path():
    assert es.callback_path("/workflows", "k") == "/workflows/callbacks/k"
    assert es.callback_path("/", "k") == "/callbacks/k"


# --------------------------------------------------------------------------- EventService.read, with fakes


class FakeClock:
    def __init__(self, start: datetime):
        self.now = start
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)

    def monotonic(self) -> float:
        return (self.now - T0).total_seconds()


class FakeStore:
    def __init__(self):
        self.events: list[dict] = []
        self.fenced: str | None = None

    def add(self, moment: datetime, event_type: str = "t") -> dict:
        key = seq(moment, f"{len(self.events):016x}")
        event = {"seq": key, "type": event_type, "at": es.at_of(key), "data": {}}
        self.events.append(event)
        self.events.sort(key=lambda e: e["seq"])
        return event

    def after(self, instance_id, after, limit):
        return [e for e in self.events if e["seq"] > (after or es.FLOOR)][:limit]

    def last(self, instance_id):
        return self.events[-1] if self.events else None

    def fence(self, instance_id, upto):
        self.fenced = max(self.fenced or upto, upto)


def service(store, record, clock):
    from chalicelib.service.events import EventService

    class Instances:
        def get(self, instance_id):
            return record if instance_id == "i" else None

    return EventService(store, Instances(), None, lambda: clock.now, settle_seconds=1.0, sleep=clock.sleep,
                        clock=clock.monotonic)


def test_read_waits_until_the_next_event_settles():
    clock, store = FakeClock(T0), FakeStore()
    store.add(T0 - timedelta(seconds=0.4))
    page = service(store, {"status": "running"}, clock).read("i", wait=5)
    assert len(page["events"]) == 1 and not page["ended"]
    # Slept just until it was a settle window old (polling at most every POLL_SECONDS meanwhile).
    assert timedelta(seconds=0.6) <= clock.now - T0 <= timedelta(seconds=0.62)
    assert page["cursor"] == store.events[0]["seq"]


def test_read_without_wait_returns_at_once_and_keeps_the_cursor():
    clock, store = FakeClock(T0), FakeStore()
    old = store.add(T0 - timedelta(seconds=5))
    store.add(T0)
    svc = service(store, {"status": "running"}, clock)
    assert svc.read("i")["events"] == [old]
    page = svc.read("i", after=old["seq"])
    assert page == {"events": [], "cursor": old["seq"], "more": False, "ended": False, "status": "running"}
    assert clock.slept == []


def test_an_ended_instance_is_finished_once_its_log_ends_with_instance_ended():
    clock, store = FakeClock(T0), FakeStore()
    store.add(T0)
    record = {"status": "completed", "completed_at": es.at_of(seq(T0))}
    svc = service(store, record, clock)
    page = svc.read("i")
    assert len(page["events"]) == 1 and not page["ended"]  # handed out at once, but instance.ended is to come
    ended = store.add(T0 + timedelta(milliseconds=5), es.END_EVENT)
    page = svc.read("i", after=page["cursor"], wait=3)
    assert page["events"] == [ended] and page["ended"] and clock.slept == []
    assert svc.read("i", after=ended["seq"])["ended"]


def test_an_instance_that_ended_long_ago_is_finished_without_instance_ended():
    clock, store = FakeClock(T0), FakeStore()
    store.add(T0 - timedelta(hours=1))
    record = {"status": "failed", "completed_at": es.at_of(seq(T0 - timedelta(hours=1)))}
    assert service(store, record, clock).read("i")["ended"]


def test_reading_an_unknown_instance_or_with_a_bad_cursor():
    from chalicelib.errors import NotFound

    clock, store = FakeClock(T0), FakeStore()
    svc = service(store, {"status": "running"}, clock)
    with pytest.raises(NotFound):
        svc.read("nope")
    with pytest.raises(es.BadCursor):
        svc.read("i", after="5")
