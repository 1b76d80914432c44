"""The time range in the URL: presets, custom ranges in the project's zone, and bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dashboards.timerange import local_month_end, timerange_parse

NOW = datetime(2026, 11, 20, 15, 47, 12, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
PARIS = ZoneInfo("Europe/Paris")


def parse(tz=UTC_ZONE, default="24h", **params):
    return timerange_parse(params, tz=tz, now=NOW, default=default)


@pytest.mark.parametrize("key, start, interval", [
    ("1h", datetime(2026, 11, 20, 14, 47, tzinfo=UTC), "minute"),
    ("24h", datetime(2026, 11, 19, 15, 0, tzinfo=UTC), "hour"),
    ("7d", datetime(2026, 11, 13, 15, 0, tzinfo=UTC), "hour"),
    ("30d", datetime(2026, 10, 21, 0, 0, tzinfo=UTC), "day"),
    ("today", datetime(2026, 11, 20, 0, 0, tzinfo=UTC), "hour"),
    ("month", datetime(2026, 11, 1, 0, 0, tzinfo=UTC), "day"),
])
def test_presets_end_now_and_start_on_a_bucket_boundary(key, start, interval):
    time_range = parse(range=key)
    assert (time_range.start, time_range.end, time_range.interval, time_range.error) == (start, NOW, interval, None)
    assert time_range.params() == {"range": key}


def test_today_and_this_month_start_at_the_projects_local_midnight():
    assert parse(tz=PARIS, range="today").start == datetime(2026, 11, 19, 23, 0, tzinfo=UTC)
    assert parse(tz=PARIS, range="month").start == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    assert local_month_end(NOW, PARIS) == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def test_a_custom_range_is_read_in_the_projects_zone_and_an_end_date_includes_its_day():
    time_range = parse(tz=PARIS, range="custom", start="2026-11-01T08:30", end="2026-11-02")
    assert time_range.start == datetime(2026, 11, 1, 7, 30, tzinfo=UTC)
    assert time_range.end == datetime(2026, 11, 2, 23, 0, tzinfo=UTC)
    assert time_range.params() == {"range": "custom", "start": "2026-11-01T08:30", "end": "2026-11-03T00:00"}
    assert "2026-11-01 08:30" in time_range.label


def test_a_custom_range_without_an_end_runs_until_now():
    assert parse(range="custom", start="2026-11-20").end == NOW


@pytest.mark.parametrize("params, error", [
    ({"range": "custom"}, "needs a start"),
    ({"range": "custom", "start": "yesterday"}, "needs a start"),
    ({"range": "custom", "start": "2026-02-30"}, "needs a start"),
    ({"range": "custom", "start": "2026-11-10", "end": "2026-11-09T00:00"}, "ends before it starts"),
])
def test_an_unreadable_custom_range_falls_back_to_the_default_and_says_why(params, error):
    time_range = parse(default="7d", **params)
    assert time_range.key == "7d" and error in time_range.error


def test_an_unknown_preset_is_the_default():
    assert parse(default="month", range="fortnight").key == "month"
