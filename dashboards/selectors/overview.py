"""The Overview page: today and this month, the range's headline numbers, and where spend goes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dashboards.hooks import BudgetLine, budget_lines
from dashboards.selectors.common import NO_INTERVAL, total, unknown_costs, window_rows
from dashboards.timerange import TimeRange, local_day_start, local_month_start
from observatory.reliability.scorecard import Scorecard, scorecard_get
from observatory.tenancy.models import Project

HEADLINE = ["count", "errors", "error_rate", "cost", "unpriced_count", "latency_p50", "latency_p99"]
TOP = 5


@dataclass
class Overview:
    today: dict[str, Any]
    month: dict[str, Any]
    totals: dict[str, Any]  # over the range
    series: list[dict[str, Any]]  # HEADLINE per bucket
    top_models: list[dict[str, Any]]
    top_features: list[dict[str, Any]]
    budgets: list[BudgetLine] = field(default_factory=list)
    scorecard: Scorecard | None = None

    @property
    def has_data(self) -> bool:
        return bool(self.totals.get("count") or self.month.get("count"))


def overview_get(*, project: Project, time_range: TimeRange, filters: Mapping[str, Sequence[str]],
                 now: datetime) -> Overview:
    month_start = local_month_start(now, time_range.tz)
    today = total(project=project, start=local_day_start(now, time_range.tz), end=now, metrics=["count", "cost"],
                  filters=filters)
    month = total(project=project, start=month_start, end=now, metrics=["count", "cost"], filters=filters)
    totals = window_rows(project=project, time_range=time_range, metrics=HEADLINE, filters=filters,
                         interval=NO_INTERVAL)
    series = window_rows(project=project, time_range=time_range, metrics=HEADLINE, filters=filters)
    top = {}
    for dimension in ("model", "feature"):
        top[dimension] = unknown_costs(window_rows(
            project=project, time_range=time_range, filters=filters, interval=NO_INTERVAL, group_by=[dimension],
            metrics=["count", "cost", "unpriced_count", "error_rate", "latency_p50"], order_by="-cost", limit=TOP))
    return Overview(today=today, month=month, totals=totals[0] if totals else {}, series=series,
                    top_models=top["model"], top_features=top["feature"],
                    budgets=budget_lines(project=project, month_start=month_start),
                    # The checklist is about the whole project, whatever the filters.
                    scorecard=scorecard_get(project=project, start=time_range.start, end=time_range.end, now=now,
                                            examples=False))
