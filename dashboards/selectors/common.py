"""Shared reads: a page's window through the rollups, and the month-end forecast."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dashboards.timerange import TimeRange, local_month_end, local_month_start
from observatory.metrics.selectors import metrics_query
from observatory.tenancy.models import Project

NO_INTERVAL = "none"
RUN_RATE_WINDOW = timedelta(days=7)


def window_rows(*, project: Project, time_range: TimeRange, metrics: Sequence[str],
                filters: Mapping[str, Sequence[str]] | None = None, interval: str | None = None,
                **options: Any) -> list[dict[str, Any]]:
    """metrics_query over the page's range, per chart bucket unless `interval` says otherwise
    (NO_INTERVAL for one row per group over the whole range)."""
    interval = interval or time_range.interval
    return metrics_query(project=project, start=time_range.start, end=time_range.end, metrics=metrics,
                         filters=filters, interval=None if interval == NO_INTERVAL else interval, **options).rows


def unknown_costs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A group whose calls all lack a price has an unknown cost, not a cost of $0 (the rollups
    sum nothing to 0 and count the unpriced calls apart)."""
    for row in rows:
        if row.get("count") and row.get("unpriced_count", 0) >= row["count"]:
            row["cost"] = None
    return rows


# What a window without a single call adds up to; other metrics (percentiles, rates) have no value.
_EMPTY_WINDOW = {"count": 0, "cost": Decimal(0)}


def total(*, project: Project, start: datetime, end: datetime, metrics: Sequence[str],
          filters: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Each metric over the whole window. A window with no calls (today, just after midnight)
    still names every metric asked for, so pages read $0.00 and 0 calls, never a blank."""
    rows = metrics_query(project=project, start=start, end=end, metrics=metrics, filters=filters).rows
    return rows[0] if rows else {metric: _EMPTY_WINDOW.get(metric) for metric in metrics}


@dataclass(frozen=True)
class Forecast:
    month_start: datetime
    month_end: datetime
    spent: Decimal  # month to date
    daily_rate: Decimal  # average spend per day over the last RUN_RATE_WINDOW
    projected: Decimal  # at month end, if the rate holds


def month_forecast(*, project: Project, now: datetime, tz: ZoneInfo,
                   filters: Mapping[str, Sequence[str]] | None = None) -> Forecast:
    """Month-to-date spend plus the last seven days' run rate for the rest of the month (in
    the project's time zone). A run rate follows a change in traffic within days, where the
    month's own average would lag behind it for weeks."""
    start, end = local_month_start(now, tz), local_month_end(now, tz)
    spent = total(project=project, start=start, end=now, metrics=["cost"], filters=filters).get("cost") or Decimal(0)
    recent = total(project=project, start=now - RUN_RATE_WINDOW, end=now, metrics=["cost"],
                   filters=filters).get("cost") or Decimal(0)
    daily_rate = recent / Decimal(RUN_RATE_WINDOW.days)
    remaining_days = Decimal((end - now).total_seconds()) / Decimal(86400)
    return Forecast(month_start=start, month_end=end, spent=spent, daily_rate=daily_rate,
                    projected=spent + daily_rate * remaining_days)
