"""The time range a page shows: a preset relative to now, or a custom start and end.

It lives in the URL (`?range=7d`, or `?range=custom&start=2026-11-01&end=2026-11-15T12:00`) so
that every view can be shared. Custom times are wall-clock times in the project's time zone,
as pages display them; "today" and "this month" start at the project's local midnight, like
its budgets. Relative presets start on a bucket boundary of the chart interval, so that the
first point of a chart is a whole hour (or day), not a fraction of one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils.dateparse import parse_date, parse_datetime

from observatory.metrics.selectors import interval_choose
from observatory.metrics.services import bucket_floor

CUSTOM = "custom"
PRESETS: dict[str, str] = {
    "1h": "Last hour",
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "today": "Today",
    "month": "This month",
}
_RELATIVE = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
# What an <input type="datetime-local"> sends and shows.
_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class TimeRange:
    key: str  # a PRESETS key or CUSTOM
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    interval: str  # chart bucket: minute, hour or day
    tz: ZoneInfo
    error: str | None = None  # why the custom range asked for was not used

    @property
    def label(self) -> str:
        if self.key in PRESETS:
            return PRESETS[self.key]
        return f"{self.local_start:%Y-%m-%d %H:%M} – {self.local_end:%Y-%m-%d %H:%M}"

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(self.tz)

    @property
    def local_end(self) -> datetime:
        return self.end.astimezone(self.tz)

    def params(self) -> dict[str, str]:
        """The query parameters that select this range again."""
        if self.key != CUSTOM:
            return {"range": self.key}
        return {"range": CUSTOM, "start": self.local_start.strftime(_LOCAL_FORMAT),
                "end": self.local_end.strftime(_LOCAL_FORMAT)}


def local_day_start(now: datetime, tz: ZoneInfo) -> datetime:
    return datetime.combine(now.astimezone(tz).date(), time.min, tzinfo=tz).astimezone(UTC)


def local_month_start(now: datetime, tz: ZoneInfo) -> datetime:
    return datetime.combine(now.astimezone(tz).date().replace(day=1), time.min, tzinfo=tz).astimezone(UTC)


def local_month_end(now: datetime, tz: ZoneInfo) -> datetime:
    first = now.astimezone(tz).date().replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return datetime.combine(following, time.min, tzinfo=tz).astimezone(UTC)


def _preset(key: str, *, tz: ZoneInfo, now: datetime) -> TimeRange:
    if key == "today":
        start = local_day_start(now, tz)
    elif key == "month":
        start = local_month_start(now, tz)
    else:
        start = now - _RELATIVE[key]
    interval = interval_choose(start=start, end=now, now=now)
    if key in _RELATIVE:
        start = bucket_floor(start, interval)
    return TimeRange(key=key, start=start, end=now, interval=interval, tz=tz)


def _local_moment(value: str, *, tz: ZoneInfo, end: bool) -> datetime | None:
    """A custom bound: a date (an end date includes its whole day) or a local date and time."""
    value = value.strip()
    if _DATE.fullmatch(value):
        day = parse_date(value)
        moment = datetime.combine(day + timedelta(days=1) if end else day, time.min)
    else:
        moment = parse_datetime(value)
        if moment is None:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def timerange_parse(params: Mapping[str, str], *, tz: ZoneInfo, now: datetime, default: str) -> TimeRange:
    """The range `params` ask for; the page's `default` preset when they ask for none, or
    for one that cannot be read (with `error` saying why)."""
    now = now.astimezone(UTC)
    key = params.get("range") or default
    if key in PRESETS:
        return _preset(key, tz=tz, now=now)
    fallback = _preset(default, tz=tz, now=now)
    if key != CUSTOM:
        return fallback
    try:
        start = _local_moment(params.get("start") or "", tz=tz, end=False)
        end = _local_moment(params.get("end") or "", tz=tz, end=True) if params.get("end") else now
    except ValueError:  # a well-formed but impossible date, e.g. 2026-02-30
        start = end = None
    if start is None or end is None:
        return replace(fallback, error="The custom range needs a start (and optionally an end) such as "
                                        "2026-11-20 or 2026-11-20T14:30.")
    if end <= start:
        return replace(fallback, error="The custom range ends before it starts.")
    return TimeRange(key=CUSTOM, start=start, end=end, interval=interval_choose(start=start, end=end, now=now), tz=tz)
