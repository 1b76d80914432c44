"""Budget periods: a day, a week (Monday to Monday) or a calendar month, in the project's time
zone, so "today" and "this month" mean what the budget owner reads on their own clock.

Bounds are instants in UTC, so that arithmetic on them is in real time (subtracting two
aware datetimes of one zone would count wall-clock hours). Days around a DST change are 23 or
25 hours long; where midnight does not exist on a given day (a zone that springs forward at
00:00), the period starts at the first instant of that date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import models


class Period(models.TextChoices):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class PeriodBounds:
    start: datetime  # UTC
    end: datetime  # UTC, exclusive
    first_day: date  # local
    last_day: date  # local

    @property
    def key(self) -> str:
        """Names the period for claims: its first local date."""
        return self.first_day.isoformat()


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # Through UTC: a midnight that a DST jump skips becomes the first real instant.
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def _first_day(period: str, day: date) -> date:
    if period == Period.DAY:
        return day
    if period == Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next_first_day(period: str, first: date) -> date:
    if period == Period.DAY:
        return first + timedelta(days=1)
    if period == Period.WEEK:
        return first + timedelta(days=7)
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_bounds(*, period: str, time_zone: str, moment: datetime) -> PeriodBounds:
    """The period of kind `period` that contains `moment`, in `time_zone`."""
    zone = ZoneInfo(time_zone)
    first = _first_day(period, moment.astimezone(zone).date())
    following = _next_first_day(period, first)
    return PeriodBounds(start=_local_midnight(first, zone), end=_local_midnight(following, zone), first_day=first,
                        last_day=following - timedelta(days=1))


def period_label(*, period: str, bounds: PeriodBounds) -> str:
    if period == Period.DAY:
        return f"{bounds.first_day:%a %d %b %Y}"
    if period == Period.WEEK:
        return f"{bounds.first_day:%a %d %b} – {bounds.last_day:%a %d %b %Y}"
    return f"{bounds.first_day:%B %Y}"
