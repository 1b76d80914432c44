from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from dashboards import charts
from dashboards.filters import METRIC_FILTERS
from dashboards.pages import Page, project_page
from dashboards.selectors.overview import HEADLINE, overview_get
from dashboards.tables import Column, Table


def top_table(name: str, title: str, dimension: str, label: str, rows: list[dict], page: Page) -> Table:
    for row in rows:
        if row.get(dimension):
            row[f"{dimension}_url"] = page.url("traces", **{dimension: row[dimension]})
    return Table(name=name, title=title, rows=rows, columns=[
        Column(dimension, label), Column("count", "Calls", "int"), Column("cost", "Spend", "money"),
        Column("unpriced_count", "Unpriced calls", "int"), Column("error_rate", "Error rate", "pct"),
        Column("latency_p50", "P50 latency", "ms"),
    ])


@project_page("overview", filters=METRIC_FILTERS)
def overview(request: HttpRequest, page: Page) -> HttpResponse:
    data = overview_get(project=page.project, time_range=page.range, filters=page.filters, now=timezone.now())
    figures = {
        "calls": charts.time_lines(data.series, metrics={"count": "Calls", "errors": "Errors"}, time_range=page.range,
                                   unit="count"),
        "spend": charts.time_lines(data.series, metrics={"cost": "Spend"}, time_range=page.range, unit="money"),
        "latency": charts.time_lines(data.series, metrics={"latency_p50": "P50", "latency_p99": "P99"},
                                     time_range=page.range, unit="ms"),
    }
    tables = [top_table("top-models", "Top models by spend", "model", "Model", data.top_models, page),
              top_table("top-features", "Top features by spend", "feature", "Feature", data.top_features, page)]
    month_budget = sum((budget.amount for budget in data.budgets), start=0)
    return page.render("dashboards/overview.html", {
        "data": data, "charts": {name: figure for name, figure in figures.items() if figure},
        "sparks": charts.sparklines(data.series, metrics=HEADLINE, time_range=page.range),
        "month_budget": month_budget or None, "scorecard_url": page.url("reliability") + "#scorecard",
    }, tables=tables)
