"""Budget periods in the project's time zone: days, weeks and months, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from observatory.budgets.periods import Period, period_bounds, period_label


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def bounds_utc(period: str, zone: str, moment: datetime) -> tuple[datetime, datetime]:
    bounds = period_bounds(period=period, time_zone=zone, moment=moment)
    return bounds.start, bounds.end


def test_a_day_is_the_local_calendar_day_not_the_utc_one():
    # 23:30 UTC on the 21st is already the 22nd in Tokyo and still the 21st in Los Angeles.
    moment = utc(2026, 11, 21, 23, 30)
    assert bounds_utc(Period.DAY, "Asia/Tokyo", moment) == (utc(2026, 11, 21, 15), utc(2026, 11, 22, 15))
    assert bounds_utc(Period.DAY, "America/Los_Angeles", moment) == (utc(2026, 11, 21, 8), utc(2026, 11, 22, 8))
    assert bounds_utc(Period.DAY, "UTC", moment) == (utc(2026, 11, 21), utc(2026, 11, 22))


def test_weeks_run_monday_to_monday_in_local_time():
    start, end = bounds_utc(Period.WEEK, "Europe/Berlin", utc(2026, 11, 22, 23, 30))  # Monday 23rd, 00:30 local
    assert (start, end) == (utc(2026, 11, 22, 23), utc(2026, 11, 29, 23))
    start, end = bounds_utc(Period.WEEK, "Europe/Berlin", utc(2026, 11, 22, 22, 59, 59))  # Sunday 23:59:59
    assert (start, end) == (utc(2026, 11, 15, 23), utc(2026, 11, 22, 23))


def test_a_month_across_the_autumn_dst_change_is_an_hour_longer():
    start, end = bounds_utc(Period.MONTH, "America/New_York", utc(2026, 11, 15))
    assert start == utc(2026, 11, 1, 4)  # midnight EDT
    assert end == utc(2026, 12, 1, 5)  # midnight EST
    assert end - start == timedelta(days=30, hours=1)
    # The first hour of November in New York is still October in UTC, and counts for November.
    assert bounds_utc(Period.MONTH, "America/New_York", utc(2026, 11, 1, 4, 30))[0] == utc(2026, 11, 1, 4)
    assert bounds_utc(Period.MONTH, "America/New_York", utc(2026, 11, 1, 3, 59))[0] == utc(2026, 10, 1, 4)


@pytest.mark.parametrize(
    ("moment", "hours"),
    [
        (utc(2026, 10, 25, 12), 25),  # Paris falls back at 03:00 CEST
        (utc(2027, 3, 28, 12), 23),  # and springs forward at 02:00 CET
        (utc(2026, 10, 24, 12), 24),
    ],
)
def test_days_of_a_dst_change_are_23_or_25_hours_long(moment, hours):
    start, end = bounds_utc(Period.DAY, "Europe/Paris", moment)
    assert end - start == timedelta(hours=hours)
    assert start.astimezone(ZoneInfo("Europe/Paris")).hour == 0
    assert start.tzinfo == UTC  # so that subtracting bounds counts real hours, not wall-clock ones


def test_a_day_whose_midnight_does_not_exist_starts_at_its_first_instant():
    # Santiago springs forward at 24:00 on 5 Sep 2026: 6 Sep starts at 01:00 -03.
    start, end = bounds_utc(Period.DAY, "America/Santiago", utc(2026, 9, 6, 12))
    assert start == utc(2026, 9, 6, 4)
    assert end == utc(2026, 9, 7, 3)
    previous_start, previous_end = bounds_utc(Period.DAY, "America/Santiago", utc(2026, 9, 5, 12))
    assert previous_end == start  # no gap and no overlap between consecutive days
    assert previous_end - previous_start == timedelta(hours=24)


def test_consecutive_periods_tile_time_without_gaps():
    for period in Period.values:
        moment = utc(2026, 1, 1)
        for _ in range(40):
            bounds = period_bounds(period=period, time_zone="Australia/Lord_Howe", moment=moment)
            following = period_bounds(period=period, time_zone="Australia/Lord_Howe", moment=bounds.end)
            assert following.start == bounds.end
            assert bounds.start <= moment < bounds.end
            moment = bounds.end + timedelta(hours=5)


def test_labels_name_the_period_in_local_dates():
    bounds = period_bounds(period=Period.MONTH, time_zone="Asia/Tokyo", moment=utc(2026, 11, 30, 16))
    assert period_label(period=Period.MONTH, bounds=bounds) == "December 2026"
    week = period_bounds(period=Period.WEEK, time_zone="UTC", moment=utc(2026, 11, 18))
    assert period_label(period=Period.WEEK, bounds=week) == "Mon 16 Nov – Sun 22 Nov 2026"
    assert bounds.key == "2026-12-01"
