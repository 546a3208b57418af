"""An instance's event log: sequence keys, the cursor rules readers follow, NDJSON and SSE formatting.

Pure: no AWS, no environment reads, no clock of its own (callers pass the time in).

Events are stored per instance under a sort key ``seq`` = ``<UTC time, microseconds>-<16 random hex>``,
e.g. ``20250101T120000.123456Z-9f86d081884c7d65``. Fixed width, so text order is time order.

Writers (step runners, the task registrar, the API) never coordinate: parallel branches write at the
same moment from different Lambda containers, and in-process moto is not atomic under threads, so
no counter is used. Each writer stamps its own key from its clock immediately before the write (a
process-wide clock that never repeats or goes back, ``SeqClock``) and adds 64 random bits, so two
writers never produce the same key, and the write is conditional (``attribute_not_exists``) anyway.

Readers page through the log with a cursor (the last ``seq`` they were given, as ``after=`` or
SSE's ``Last-Event-ID``). A late writer whose key was stamped *before* a reader's cursor would land
behind it and never be seen, so each instance has a fence (an item of the log's table, the highest seq
a reader has handed out) and every event write is a transaction that holds only while the fence is
below its seq. Before a reader hands out a page it raises the fence to the page's last seq, then reads
the page again (consistently): a write stamped below the fence either landed before the fence rose
(and is in the second read) or is refused and stamped again above the fence, where the reader's next
read finds it. While an instance may still be written to, a reader is also handed only events older
than a short settle window (``SETTLE_SECONDS``), so that writers, whose writes land within
milliseconds of their stamp, are almost never refused.

The guarantee: a reader that follows its cursor sees every event exactly once, in ``seq`` order, however
late a write lands after its stamp (DynamoDB serialises the fence's update and the writes' transactions;
the reads are strongly consistent). The order of events stamped within the same
microsecond by different processes is arbitrary but fixed. ``seq`` order is the order in which
writers reached the log, which follows causality (a step's events are written before the step
returns, a task's completion before the workflow is resumed), not the order of wall clocks
elsewhere.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

SETTLE_SECONDS = 0.5
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_WAIT_SECONDS = 20.0
SSE_RETRY_MS = 1000  # how soon an EventSource reconnects after a (buffered) response ends
FOLLOW_RETRY_MS = 250  # the same for a followed read: a long poll answers as events come, so come back soon
MAX_DATA_BYTES = 64 * 1024  # an event's data above this is replaced by a note of its size

SEQ_RE = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{16}$")
# Every seq sorts above this; bookkeeping items in the same table (attempt counters) sort below it.
FLOOR = "0"
_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"

# Event types Stepflow writes; a step's custom event may not pose as one of them.
RESERVED_PREFIXES = ("step.", "task.", "instance.", "event.")
CUSTOM_PREFIX = "custom."
_TYPE_RE = re.compile(r"[^A-Za-z0-9_.:/-]")
MAX_TYPE_LENGTH = 128

# Instance statuses after which nothing more happens (until a resume).
TERMINAL = frozenset({"completed", "failed", "canceled"})
END_EVENT = "instance.ended"


class BadCursor(ValueError):
    """A cursor that is not a seq this log hands out."""


# --------------------------------------------------------------------------- keys


def seq_time(moment: datetime) -> str:
    """The time part of a seq: sortable UTC with microseconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def make_seq(moment: datetime, suffix: str) -> str:
    return f"{seq_time(moment)}-{suffix}"


def seq_moment(seq: str) -> datetime:
    return datetime.strptime(seq.split("-", 1)[0], _TIME_FORMAT).replace(tzinfo=UTC)


def at_of(seq: str) -> str:
    """The event's time as the rest of the API writes times (ISO 8601, milliseconds, Z)."""
    return seq_moment(seq).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SeqClock:
    """Per-process time source for seqs: strictly increasing microseconds, even when the wall clock
    repeats a value or steps back a little, so one process's events keep the order it wrote them in."""

    def __init__(self, now: Callable[[], datetime]):
        self._now = now
        self._last: datetime | None = None
        self._lock = threading.Lock()

    def next(self, *, at_least: datetime | None = None) -> datetime:
        """The next moment; with `at_least`, no earlier than that (and the clock goes on from there)."""
        with self._lock:
            moment = self._now()
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            if at_least is not None and moment < at_least:
                moment = at_least
            if self._last is not None and moment <= self._last:
                moment = self._last + timedelta(microseconds=1)
            self._last = moment
            return moment


def parse_cursor(value: str | None) -> str | None:
    """The cursor a reader gave (``after`` or ``Last-Event-ID``); None for none; BadCursor otherwise."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if not SEQ_RE.fullmatch(value):
        raise BadCursor("a cursor is the seq of an event this stream returned, e.g. "
                        "20250101T120000.123456Z-9f86d081884c7d65")
    return value


# --------------------------------------------------------------------------- reading rules


def horizon(now: datetime, settle_seconds: float, *, ended: bool) -> str | None:
    """Events with a seq below this may be handed out; None means all of them (the instance ended)."""
    if ended:
        return None
    return seq_time(now - timedelta(seconds=settle_seconds))


def is_ended(status: str | None) -> bool:
    return status in TERMINAL


@dataclass(frozen=True)
class Selection:
    events: list[dict[str, Any]]
    more: bool  # more events are available now (the page was full)
    held_back: str | None  # the oldest seq not handed out because it has not settled yet


def select(candidates: Sequence[Mapping[str, Any]], limit: int, upto: str | None) -> Selection:
    """From events after the cursor, in seq order, the page a reader gets now.

    ``candidates`` may hold up to ``limit + 1`` events (one more tells whether the page is full).
    Stops at the first event that has not settled: everything after it is newer still.
    """
    page: list[dict[str, Any]] = []
    for event in candidates:
        if upto is not None and event["seq"] >= upto:
            return Selection(page, False, event["seq"])
        if len(page) == limit:
            return Selection(page, True, None)
        page.append(dict(event))
    return Selection(page, False, None)


def settles_at(seq: str, settle_seconds: float) -> datetime:
    return seq_moment(seq) + timedelta(seconds=settle_seconds)


# --------------------------------------------------------------------------- events


def custom_type(event_type: str) -> str:
    """A step's custom event type as stored: kept, unless it poses as a Stepflow event or has
    characters a stream cannot carry (then ``custom.<cleaned>``)."""
    cleaned = _TYPE_RE.sub("_", str(event_type))[:MAX_TYPE_LENGTH] or "event"
    if cleaned != event_type or cleaned.startswith(RESERVED_PREFIXES):
        return (CUSTOM_PREFIX + cleaned)[:MAX_TYPE_LENGTH]
    return cleaned


def bounded_data(data: Any) -> dict[str, Any]:
    """Event data as stored: a JSON object, at most MAX_DATA_BYTES of it."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        data = {"value": data}
    text = json.dumps(data, default=str, separators=(",", ":"))
    if len(text.encode()) > MAX_DATA_BYTES:
        return {"truncated": True, "bytes": len(text.encode())}
    return json.loads(text)


def public_event(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a reader gets: {seq, type, at, step?, data}."""
    event = {"seq": record["seq"], "type": record["type"], "at": record.get("at") or at_of(record["seq"])}
    if record.get("step"):
        event["step"] = record["step"]
    event["data"] = record.get("data") or {}
    return event


def callback_path(api_prefix: str, key: str) -> str:
    """The path an external system POSTs to, to complete a webhook step (the key, never the token)."""
    return f"{api_prefix.rstrip('/')}/callbacks/{key}"


# --------------------------------------------------------------------------- formats

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"


def ndjson(events: Iterable[Mapping[str, Any]]) -> str:
    """One JSON object per line, each line ending in a newline."""
    return "".join(json.dumps(public_event(e), default=str, separators=(",", ":")) + "\n" for e in events)


def _sse_field(value: str) -> str:
    # A field value ends at a line break: keep one out of it.
    return value.replace("\r", " ").replace("\n", " ")


def sse_frame(event: Mapping[str, Any]) -> str:
    view = public_event(event)
    data = json.dumps(view, default=str, separators=(",", ":"))  # one line: json never emits raw newlines
    return f"id: {_sse_field(view['seq'])}\nevent: {_sse_field(view['type'])}\ndata: {data}\n\n"


def sse(events: Iterable[Mapping[str, Any]], retry_ms: int | None = SSE_RETRY_MS) -> str:
    """Server-sent events: ``retry:`` first (how soon to reconnect), then one frame per event."""
    head = f"retry: {int(retry_ms)}\n\n" if retry_ms is not None else ""
    return head + "".join(sse_frame(e) for e in events)
