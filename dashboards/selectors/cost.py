"""The Cost page: spend over time by a chosen dimension, the month's burn and forecast, top
spenders, cost per call, and calls whose price is unknown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from dashboards.hooks import BudgetLine, budget_lines
from dashboards.selectors.common import NO_INTERVAL, Forecast, month_forecast, unknown_costs, window_rows
from dashboards.timerange import TimeRange
from observatory.calls.models import Call, CostSource
from observatory.metrics.selectors import USER, metrics_query
from observatory.tenancy.models import Project

BREAKDOWNS = ("model", "feature", "provider", USER)
TOP_SPENDERS = 10
UNPRICED_LIST = 20


@dataclass
class Cost:
    by: str
    # Per-user spend exists by day only, and cannot be combined with dimension filters.
    by_interval: str
    filters_ignored: bool
    spend: list[dict[str, Any]]  # cost per bucket and group
    burn: list[tuple[datetime, Decimal]]  # this month, per hour
    forecast: Forecast
    spenders: list[dict[str, Any]]
    per_model: list[dict[str, Any]]
    unpriced: list[Call]
    budgets: list[BudgetLine] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return any(row.get("count") for row in self.per_model)


def _per_call(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        priced = (row.get("count") or 0) - (row.get("unpriced_count") or 0)
        row["cost_per_call"] = row["cost"] / priced if priced and row.get("cost") is not None else None
    return rows


def unpriced_calls(*, project: Project, time_range: TimeRange, filters: Mapping[str, Sequence[str]],
                   limit: int = UNPRICED_LIST) -> list[Call]:
    calls = Call.objects.filter(project=project, start_time__gte=time_range.start, start_time__lt=time_range.end,
                                cost_source=CostSource.UNKNOWN)
    for name, values in filters.items():
        calls = calls.filter(**{f"{name}__in": values})
    return list(calls.order_by("-start_time", "-id")[:limit])


def cost_get(*, project: Project, time_range: TimeRange, filters: Mapping[str, Sequence[str]], by: str,
             now: datetime) -> Cost:
    by = by if by in BREAKDOWNS else BREAKDOWNS[0]
    common = {"project": project, "time_range": time_range}
    users = by == USER
    by_interval = "day" if users else time_range.interval
    spend = window_rows(**common, metrics=["cost", "count"], group_by=[by], interval=by_interval,
                        filters=None if users else filters)
    forecast = month_forecast(project=project, now=now, tz=time_range.tz, filters=filters)
    burn = [(row["bucket"], row["cost"]) for row in metrics_query(
        project=project, start=forecast.month_start, end=now, metrics=["cost"], interval="hour",
        filters=filters).rows]
    spenders = _per_call(unknown_costs(window_rows(
        **common, metrics=["cost", "count", "unpriced_count"], group_by=[USER], interval=NO_INTERVAL,
        order_by="-cost", limit=TOP_SPENDERS)))
    per_model = _per_call(unknown_costs(window_rows(
        **common, filters=filters, metrics=["count", "cost", "unpriced_count", "input_tokens", "output_tokens"],
        group_by=["model", "provider"], interval=NO_INTERVAL, order_by="-cost")))
    return Cost(by=by, by_interval=by_interval, filters_ignored=bool(filters) and users, spend=spend, burn=burn,
                forecast=forecast, spenders=spenders, per_model=per_model,
                unpriced=unpriced_calls(**common, filters=filters),
                budgets=budget_lines(project=project, month_start=forecast.month_start))
