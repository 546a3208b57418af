"""Schedule expressions (EventBridge Scheduler syntax) and their fire times in a time zone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.core.cron import SEARCH_DAYS, ExpressionError, Rate, Timing, parse, zone_named


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fires(expression: str, zone: str, after: datetime, n: int = 4, **dates: datetime) -> list[str]:
    timing = Timing(parse(expression), zone_named(zone), dates.get("start") or utc(2026, 1, 1), dates.get("start"),
                    dates.get("end"))
    return [t.strftime("%Y-%m-%dT%H:%MZ") for t in timing.times(after, limit=n)]


def test_weekday_crons_in_a_time_zone_follow_its_offset_changes():
    # Paris moves from UTC+1 to UTC+2 on 29 March 2026: 09:00 local is 08:00Z, then 07:00Z.
    assert fires("cron(0 9 ? * MON-FRI *)", "Europe/Paris", utc(2026, 3, 27)) == [
        "2026-03-27T08:00Z", "2026-03-30T07:00Z", "2026-03-31T07:00Z", "2026-04-01T07:00Z"]


def test_a_local_time_a_dst_change_skips_does_not_fire_and_a_repeated_one_fires_once():
    assert fires("cron(30 2 * * ? *)", "Europe/Paris", utc(2026, 3, 28), n=2) == [
        "2026-03-28T01:30Z", "2026-03-30T00:30Z"]  # 02:30 on 29 March does not exist
    assert fires("cron(30 2 * * ? *)", "Europe/Paris", utc(2026, 10, 24), n=3) == [
        "2026-10-24T00:30Z", "2026-10-25T00:30Z", "2026-10-26T01:30Z"]  # 02:30 on 25 October happens twice


def test_special_day_forms():
    assert fires("cron(0 0 L * ? *)", "UTC", utc(2028, 1, 15), n=2) == ["2028-01-31T00:00Z", "2028-02-29T00:00Z"]
    assert fires("cron(0 0 ? * 6#3 *)", "UTC", utc(2026, 2, 1), n=2) == ["2026-02-20T00:00Z", "2026-03-20T00:00Z"]
    assert fires("cron(0 0 ? * 2L *)", "UTC", utc(2026, 2, 1), n=1) == ["2026-02-23T00:00Z"]  # last Monday
    # 15W: the weekday nearest the 15th (15 Feb 2026 is a Sunday: Monday the 16th; 15 Aug is a Saturday: the 14th).
    assert fires("cron(0 0 15W * ? *)", "UTC", utc(2026, 2, 1), n=1) == ["2026-02-16T00:00Z"]
    assert fires("cron(0 0 15W * ? *)", "UTC", utc(2026, 8, 1), n=1) == ["2026-08-14T00:00Z"]
    assert fires("cron(0/20 8-9 1,15 JAN,JUL ? 2027)", "UTC", utc(2026, 1, 1), n=7) == [
        "2027-01-01T08:00Z", "2027-01-01T08:20Z", "2027-01-01T08:40Z", "2027-01-01T09:00Z", "2027-01-01T09:20Z",
        "2027-01-01T09:40Z", "2027-01-15T08:00Z"]


def test_rates_count_from_the_start_date_and_stop_at_the_end_date():
    start, end = utc(2026, 1, 1, 10, 7), utc(2026, 1, 1, 10, 30)
    assert fires("rate(10 minutes)", "UTC", utc(2025, 1, 1), n=5, start=start, end=end) == [
        "2026-01-01T10:07Z", "2026-01-01T10:17Z", "2026-01-01T10:27Z"]
    assert parse("rate(1 minute)") == Rate(60) and parse("rate(2 days)") == Rate(172800)


def test_a_cron_that_never_fires_has_no_next_time_and_costs_a_bounded_search():
    timing = Timing(parse("cron(0 0 30 2 ? *)"), zone_named("UTC"), utc(2026, 1, 1))
    before = time.process_time()
    assert timing.after(utc(2026, 1, 1)) is None
    assert time.process_time() - before < 2.0  # SEARCH_DAYS cheap day checks, not a minute-by-minute walk
    assert SEARCH_DAYS < 2000
    assert Timing(parse("cron(0 0 * * ? 1999)"), zone_named("UTC"), utc(2026, 1, 1)).after(utc(2026, 1, 1)) is None


@pytest.mark.parametrize("text, words", [
    ("rate(1 minutes)", "rate(1 minute)"),
    ("rate(5 minute)", "rate(5 minutes)"),
    ("rate(0 minutes)", "from 1"),
    ("rate(5 weeks)", "minute(s), hour(s) or day(s)"),
    ("cron(0 12 * * *)", "6 fields"),
    ("cron(0 12 * * * *)", "'?'"),
    ("cron(0 12 ? * ? *)", "'?'"),
    ("cron(60 12 * * ? *)", "from 0 to 59"),
    ("cron(0 24 * * ? *)", "from 0 to 23"),
    ("cron(0 0 32 * ? *)", "from 1 to 31"),
    ("cron(0 0 ? * 8 *)", "from 1 to 7"),
    ("cron(0 0 ? FOO * *)", "month"),
    ("cron(0 0 * * ? 2300)", "from 1970 to 2199"),
    ("cron(10-5 0 * * ? *)", "ends before it starts"),
    ("cron(0/0 0 * * ? *)", "step"),
    ("cron(" + ",".join(["1"] * 70) + " 0 * * ? *)", "too long"),
    ("x" * 300, "at most 256"),
    ("", "rate("),
    ("at(2026-01-01T00:00:00)", "cron("),
])
def test_bad_expressions_say_what_is_wrong(text, words):
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert words in str(caught.value)


@pytest.mark.parametrize("zone", ["", "Mars/Olympus", "../../etc/passwd", "/etc/localtime", "a" * 65, "UTC\x00"])
def test_time_zones_are_iana_names_only(zone):
    with pytest.raises(ExpressionError):
        zone_named(zone)


def test_every_minute_for_a_day_is_1440_fire_times():
    timing = Timing(parse("cron(* * * * ? *)"), zone_named("Asia/Kolkata"), utc(2026, 1, 1))
    times = list(timing.times(utc(2026, 5, 1), utc(2026, 5, 2), limit=2000))
    assert len(times) == 1440 and times[1] - times[0] == timedelta(minutes=1)


def test_a_cron_in_a_far_year_is_found_by_skipping_the_years_and_months_that_cannot_match():
    assert fires("cron(0 9 ? * MON-FRI 2099)", "Europe/Paris", utc(2026, 6, 1), n=2) == [
        "2099-01-01T08:00Z", "2099-01-02T08:00Z"]
    assert fires("cron(0 0 29 2 ? 2030-2199)", "UTC", utc(2026, 6, 1), n=2) == ["2032-02-29T00:00Z", "2036-02-29T00:00Z"]
