"""Schedule expressions as EventBridge Scheduler spells them (`cron(...)`, `rate(...)`), parsed and
evaluated in a time zone: the fire times a schedule has, computed the same way for next_runs, the local
runtime's firing and backfills. Pure: no clock, no AWS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_EXPRESSION = 256
MAX_TIMEZONE = 64
# A cron whose fields never meet (30 February) would search forever: the search stops after this many
# steps (a day, or a month or years that cannot match) and the schedule has no next run. Five years of
# days covers every leap-year and weekday combination.
SEARCH_DAYS = 366 * 5
MIN_YEAR, MAX_YEAR = 1970, 2199  # EventBridge's year field
RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
MAX_RATE_VALUE = 100_000
MONTHS = {n: i for i, n in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                      "NOV", "DEC"), start=1)}
WEEKDAYS = {n: i for i, n in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}  # 1 = Sunday


class ExpressionError(ValueError):
    """An expression or time zone a schedule cannot have; the message says what is wrong."""


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone; ExpressionError for anything else (a path, an empty or overlong name)."""
    if not isinstance(name, str) or not name or len(name) > MAX_TIMEZONE or not re.fullmatch(r"[A-Za-z0-9_+\-/]+", name) \
            or name.startswith("/") or ".." in name:
        raise ExpressionError("'timezone' is an IANA time zone name such as 'UTC' or 'Europe/Paris'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ExpressionError(f"'{name}' is not a known IANA time zone") from None


@dataclass(frozen=True)
class Rate:
    seconds: int

    def after(self, moment: datetime, anchor: datetime) -> datetime:
        """The first fire time strictly after `moment` of a rate counted from `anchor` (both UTC; before the
        anchor too, which only a backfill asks for when the schedule has no start date)."""
        steps = int((moment - anchor).total_seconds() // self.seconds) + 1
        return anchor + timedelta(seconds=steps * self.seconds)


@dataclass(frozen=True)
class DayRule:
    """Day-of-month or day-of-week: a set of values, or one of the special forms."""

    values: frozenset[int] = frozenset()
    any: bool = False  # '*' or '?'
    last: bool = False  # dom 'L': the month's last day
    nearest_weekday: int | None = None  # dom 'nW'
    last_weekday: int | None = None  # dow 'nL': the month's last such weekday
    nth: tuple[int, int] | None = None  # dow 'n#k': the k-th such weekday


@dataclass(frozen=True)
class Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    dom: DayRule
    months: frozenset[int]
    dow: DayRule
    years: frozenset[int]

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        if not self.dom.any:
            return _dom_matches(self.dom, day)
        return self.dow.any or _dow_matches(self.dow, day)

    def after(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """The first fire time strictly after `moment` (UTC), reading the fields in `zone`; None when there
        is none within SEARCH_DAYS. A local time that a DST change skips does not fire; one it repeats
        fires once (its first occurrence)."""
        local = moment.astimezone(zone)
        day = local.date()
        for _ in range(SEARCH_DAYS):  # years and months that cannot match are skipped whole, not counted by day
            if day.year not in self.years:
                later = [year for year in self.years if year > day.year]
                if not later:
                    return None
                day = date(min(later), 1, 1)
            if day.month not in self.months:
                day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
                continue
            if self.matches_day(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        wall = datetime.combine(day, time(hour, minute), tzinfo=zone)
                        utc = wall.astimezone(UTC)
                        if utc.astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
                            continue  # skipped by a DST change
                        if utc > moment:
                            return utc
            day += timedelta(days=1)
        return None


Expression = Rate | Cron


def parse(text: str) -> Expression:
    """The expression, or ExpressionError naming what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("'expression' is 'rate(<value> <unit>)' or 'cron(<6 fields>)'")
    if len(text) > MAX_EXPRESSION:
        raise ExpressionError(f"'expression' is at most {MAX_EXPRESSION} characters")
    text = text.strip()
    match = re.fullmatch(r"rate\((.*)\)", text)
    if match:
        return _rate(match[1])
    match = re.fullmatch(r"cron\((.*)\)", text)
    if match:
        return _cron(match[1])
    raise ExpressionError("'expression' is 'rate(<value> <unit>)' or 'cron(<minutes> <hours> <day-of-month> "
                          "<month> <day-of-week> <year>)'")


def _rate(body: str) -> Rate:
    match = re.fullmatch(r"(\d{1,6}) (minute|minutes|hour|hours|day|days)", body.strip())
    if not match:
        raise ExpressionError("a rate is 'rate(<value> <unit>)' with a unit of minute(s), hour(s) or day(s)")
    value, unit = int(match[1]), match[2]
    if not 1 <= value <= MAX_RATE_VALUE:
        raise ExpressionError(f"a rate's value is a whole number from 1 to {MAX_RATE_VALUE}")
    if (value == 1) != (not unit.endswith("s")):  # EventBridge's spelling: 'rate(1 minute)', 'rate(5 minutes)'
        raise ExpressionError(f"write 'rate({value} {unit.rstrip('s') if value == 1 else unit + 's'})'")
    return Rate(value * RATE_UNITS[unit.rstrip("s")])


def _cron(body: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ExpressionError("a cron has 6 fields: minutes hours day-of-month month day-of-week year, "
                              "e.g. 'cron(0 12 * * ? *)'")
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ExpressionError("a cron gives day-of-month or day-of-week; the other one is '?'")
    cron = Cron(tuple(sorted(_values(minute, 0, 59, "minutes"))), tuple(sorted(_values(hour, 0, 23, "hours"))),
                _dom(dom), frozenset(_values(month, 1, 12, "month", MONTHS)), _dow(dow),
                frozenset(_values(year, MIN_YEAR, MAX_YEAR, "year")))
    return cron


def _number(text: str, low: int, high: int, what: str, names: dict[str, int] | None = None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not re.fullmatch(r"\d{1,4}", text) or not low <= int(text) <= high:
        raise ExpressionError(f"cron {what}: '{text[:16]}' is not a value from {low} to {high}")
    return int(text)


def _values(field: str, low: int, high: int, what: str, names: dict[str, int] | None = None) -> set[int]:
    """A field of lists, ranges, steps and '*' as the set of values it selects."""
    if len(field) > 100 or field.count(",") > 60:
        raise ExpressionError(f"cron {what}: the field is too long")
    selected: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = _number(step_text, 1, high, f"{what} step") if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, low, high, what, names), _number(last, low, high, what, names)
            if end < start:
                raise ExpressionError(f"cron {what}: the range '{base[:16]}' ends before it starts")
        else:
            start = _number(base, low, high, what, names)
            end = high if step_text else start
        selected.update(range(start, end + 1, step))
    return selected


def _dom(field: str) -> DayRule:
    if field in ("?", "*"):
        return DayRule(any=True)
    if field == "L":
        return DayRule(last=True)
    match = re.fullmatch(r"(\d{1,2})W", field)
    if match:
        return DayRule(nearest_weekday=_number(match[1], 1, 31, "day-of-month"))
    return DayRule(values=frozenset(_values(field, 1, 31, "day-of-month")))


def _dow(field: str) -> DayRule:
    if field in ("?", "*"):
        return DayRule(any=True)
    match = re.fullmatch(r"(\w{1,3})L", field)
    if match:
        return DayRule(last_weekday=_number(match[1], 1, 7, "day-of-week", WEEKDAYS))
    match = re.fullmatch(r"(\w{1,3})#(\d)", field)
    if match:
        return DayRule(nth=(_number(match[1], 1, 7, "day-of-week", WEEKDAYS), _number(match[2], 1, 5, "day-of-week #")))
    return DayRule(values=frozenset(_values(field, 1, 7, "day-of-week", WEEKDAYS)))


def _weekday(day: date) -> int:
    return (day.isoweekday() % 7) + 1  # 1 = Sunday ... 7 = Saturday


def _month_days(day: date) -> int:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (following - timedelta(days=1)).day


def _dom_matches(rule: DayRule, day: date) -> bool:
    if rule.last:
        return day.day == _month_days(day)
    if rule.nearest_weekday is not None:
        target = min(rule.nearest_weekday, _month_days(day))
        wanted = day.replace(day=target)
        if wanted.isoweekday() == 6:  # Saturday: the Friday before, unless that leaves the month
            wanted = wanted - timedelta(days=1) if target > 1 else wanted + timedelta(days=2)
        elif wanted.isoweekday() == 7:  # Sunday: the Monday after, unless that leaves the month
            wanted = wanted + timedelta(days=1) if target < _month_days(day) else wanted - timedelta(days=2)
        return day == wanted
    return day.day in rule.values


def _dow_matches(rule: DayRule, day: date) -> bool:
    if rule.last_weekday is not None:
        return _weekday(day) == rule.last_weekday and day.day + 7 > _month_days(day)
    if rule.nth is not None:
        weekday, k = rule.nth
        return _weekday(day) == weekday and (day.day - 1) // 7 + 1 == k
    return _weekday(day) in rule.values


@dataclass(frozen=True)
class Timing:
    """A schedule's expression in its zone, within its optional start and end (UTC, inclusive)."""

    expression: Expression
    zone: ZoneInfo
    anchor: datetime  # where a rate counts from: the start date, else when the schedule was created
    start: datetime | None = None
    end: datetime | None = None

    def after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment`, or None (past the end, or none found)."""
        if self.start is not None and moment < self.start:
            moment = self.start - timedelta(microseconds=1)
        if isinstance(self.expression, Rate):
            found: datetime | None = self.expression.after(moment, self.anchor)
        else:
            found = self.expression.after(moment, self.zone)
        if found is None or (self.end is not None and found > self.end):
            return None
        return found

    def times(self, after: datetime, until: datetime | None = None, limit: int = 10) -> Iterator[datetime]:
        """Up to `limit` fire times after `after` (and at or before `until`)."""
        moment = after
        for _ in range(limit):
            found = self.after(moment)
            if found is None or (until is not None and found > until):
                return
            yield found
            moment = found
