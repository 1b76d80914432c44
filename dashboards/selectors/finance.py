"""The Finance page: daily spend by project, model and feature, month to date and forecast.

Only costs, counts and tokens: nothing here reads prompt or completion content, which the
finance role may never see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dashboards.hooks import BudgetLine, budget_lines
from dashboards.selectors.common import Forecast, month_forecast, window_rows
from dashboards.timerange import TimeRange
from observatory.tenancy.models import Project

# Columns of a pivot beyond these are folded into "other", so a table stays readable.
PIVOT_COLUMNS = 12
SPEND = ["cost", "count", "unpriced_count"]


@dataclass
class Pivot:
    """Spend per UTC day (rows) and group (columns), with totals."""

    columns: list[str]
    # {"day": date, "col:<column>": Decimal | None, ..., "total": Decimal, "unpriced_count": int}:
    # group names come from clients, so they are prefixed and cannot overwrite the others.
    rows: list[dict[str, Any]]


@dataclass
class ProjectMonth:
    project: Project
    forecast: Forecast
    budgets: list[BudgetLine]


@dataclass
class Finance:
    by_project: Pivot
    by_model: Pivot
    by_feature: Pivot
    months: list[ProjectMonth]

    @property
    def has_data(self) -> bool:
        return bool(self.by_project.rows)


def pivot(rows: Sequence[dict[str, Any]], *, key: str, limit: int = PIVOT_COLUMNS) -> Pivot:
    """Rows of (bucket, key, cost, count, unpriced_count) as one row per day with a column per
    key, biggest first. A cell whose calls all lack a price is unknown (None), never $0; each
    day also counts its unpriced calls, which no total includes."""
    totals: dict[str, Decimal] = {}
    for row in rows:
        name = row.get(key) or "(none)"
        totals[name] = totals.get(name, Decimal(0)) + (row.get("cost") or Decimal(0))
    ranked = [name for name, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))]
    columns = ranked[:limit] + (["other"] if len(ranked) > limit else [])
    kept = set(ranked[:limit])
    days: dict[date, dict[str, Any]] = {}
    for row in rows:
        day = row["bucket"].date()
        name = row.get(key) or "(none)"
        cell = f"col:{name if name in kept else 'other'}"
        line = days.setdefault(day, {"day": day, "total": Decimal(0), "unpriced_count": 0})
        unpriced = row.get("unpriced_count") or 0
        line["unpriced_count"] += unpriced
        if unpriced >= (row.get("count") or 0) and not row.get("cost"):
            line.setdefault(cell, None)  # only unpriced calls so far: unknown, unless priced ones follow
            continue
        line[cell] = (line.get(cell) or Decimal(0)) + row["cost"]
        line["total"] += row["cost"]
    return Pivot(columns=columns, rows=[days[day] for day in sorted(days, reverse=True)])


def finance_get(*, project: Project, projects: Sequence[Project], time_range: TimeRange, now: datetime) -> Finance:
    """`projects`: those of the organization the viewer may see costs of, `project` among them."""
    per_project = []
    months = []
    for each in projects:
        for row in window_rows(project=each, time_range=time_range, metrics=SPEND, interval="day"):
            per_project.append({**row, "project": each.slug})
        forecast = month_forecast(project=each, now=now, tz=ZoneInfo(each.time_zone))
        months.append(ProjectMonth(project=each, forecast=forecast,
                                   budgets=budget_lines(project=each, month_start=forecast.month_start)))
    common = {"project": project, "time_range": time_range, "metrics": SPEND, "interval": "day"}
    return Finance(
        by_project=pivot(per_project, key="project"),
        by_model=pivot(window_rows(**common, group_by=["model"]), key="model"),
        by_feature=pivot(window_rows(**common, group_by=["feature"]), key="feature"),
        months=months,
    )
