from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from dashboards import charts
from dashboards.filters import LABELS, METRIC_FILTERS
from dashboards.pages import Page, project_page
from dashboards.selectors.cost import BREAKDOWNS, cost_get
from dashboards.tables import Column, Table
from dashboards.views.traces import trace_url
from observatory.metrics.selectors import USER
from observatory.tenancy.roles import Capability

BY_LABELS = {**LABELS, USER: "User"}
MONEY_COLUMNS = [Column("count", "Calls", "int"), Column("cost", "Spend", "money"),
                 Column("cost_per_call", "Cost per call", "money"), Column("unpriced_count", "Unpriced calls", "int")]


@project_page("cost", Capability.VIEW_COSTS, filters=METRIC_FILTERS)
def cost(request: HttpRequest, page: Page) -> HttpResponse:
    data = cost_get(project=page.project, time_range=page.range, filters=page.filters, by=request.GET.get("by", ""),
                    now=timezone.now())
    by_label = BY_LABELS[data.by]
    figures = {
        "spend": charts.grouped_time(data.spend, group=data.by, metric="cost", time_range=page.range, unit="money",
                                     stacked=True, interval=data.by_interval),
        "burn": charts.month_burn(data.burn, forecast=data.forecast, budgets=data.budgets, time_range=page.range),
        "per_call": charts.bars([row["model"] or "(none)" for row in data.per_model],
                                {"Cost per call": [row["cost_per_call"] for row in data.per_model]},
                                unit="money", horizontal=True),
    }
    for row in data.spenders:
        row["user_id_url"] = page.url("traces", user_id=row["user_id"]) if row.get("user_id") else None
    for row in data.per_model:
        row["model_url"] = page.url("traces", model=row["model"]) if row.get("model") else None
    tables = [
        Table(name="top-spenders", title="Top spenders (users)", rows=data.spenders,
              columns=[Column(USER, "User"), *MONEY_COLUMNS],
              note="Per-user spend ignores the model, provider, feature and environment filters."
              if page.filters else ""),
        Table(name="by-model", title="Spend and cost per call by model", rows=data.per_model,
              columns=[Column("model", "Model"), Column("provider", "Provider"), *MONEY_COLUMNS,
                       Column("input_tokens", "Input tokens", "int"), Column("output_tokens", "Output tokens", "int")]),
        Table(name="unpriced", title="Latest calls with an unknown price", empty="Every call in this range is priced.",
              note="Their models are in neither the price catalogue nor this project's price overrides "
                   "(Settings → Prices), so their cost is unknown rather than $0.",
              columns=[Column("start_time", "Started", "datetime"), Column("model", "Model"),
                       Column("provider", "Provider"), Column("feature", "Feature"),
                       Column("input_tokens", "Input tokens", "int"), Column("output_tokens", "Output tokens", "int")],
              rows=[{"start_time": call.start_time, "model": call.model, "provider": call.provider,
                     "feature": call.feature, "input_tokens": call.input_tokens, "output_tokens": call.output_tokens,
                     "start_time_url": trace_url(page, call.trace_id, f"#span-{call.id}")} for call in data.unpriced]),
    ]
    return page.render("dashboards/cost.html", {
        "data": data, "by_label": by_label, "breakdowns": [(name, BY_LABELS[name]) for name in BREAKDOWNS],
        "charts": {name: figure for name, figure in figures.items() if figure},
    }, tables=tables)
