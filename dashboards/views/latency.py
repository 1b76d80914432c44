from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dashboards import charts
from dashboards.filters import LABELS, METRIC_FILTERS
from dashboards.pages import Page, project_page
from dashboards.selectors.latency import BREAKDOWNS, latency_get
from dashboards.tables import Column, Table
from dashboards.views.traces import trace_url


@project_page("latency", filters=METRIC_FILTERS)
def latency(request: HttpRequest, page: Page) -> HttpResponse:
    data = latency_get(project=page.project, time_range=page.range, filters=page.filters,
                       by=request.GET.get("by", ""))
    by_label = LABELS[data.by]
    figures = {
        "latency": charts.time_lines(data.series, metrics={"latency_p50": "P50", "latency_p95": "P95",
                                                           "latency_p99": "P99"}, time_range=page.range, unit="ms"),
        "ttft": charts.time_lines(data.series, metrics={"ttft_p50": "P50", "ttft_p95": "P95", "ttft_p99": "P99"},
                                  time_range=page.range, unit="ms"),
        "by_group": charts.grouped_time(data.by_group_series, group=data.by, metric="latency_p95",
                                        time_range=page.range, unit="ms", weight="count"),
        "throughput": charts.grouped_time(data.by_group_series, group=data.by, metric="tokens_per_second_p50",
                                          time_range=page.range, unit="tps", weight="count"),
    }
    for row in data.groups:
        if row.get(data.by):
            row[f"{data.by}_url"] = page.url("traces", **{data.by: row[data.by]})
    groups = Table(name=f"by-{data.by}", title=f"By {by_label.lower()}", rows=data.groups, columns=[
        Column(data.by, by_label), Column("count", "Calls", "int"), Column("latency_p50", "P50", "ms"),
        Column("latency_p95", "P95", "ms"), Column("latency_p99", "P99", "ms"),
        Column("ttft_p50", "TTFT P50", "ms"), Column("ttft_p95", "TTFT P95", "ms"),
        Column("tokens_per_second_p50", "Tokens/s P50", "tps"), Column("error_rate", "Error rate", "pct"),
    ])
    slowest = Table(name="slowest", title="Slowest calls", empty="No model calls in this range.", columns=[
        Column("start_time", "Started", "datetime"), Column("name", "Name"), Column("model", "Model"),
        Column("feature", "Feature"), Column("latency_ms", "Latency", "ms"),
        Column("time_to_first_token_ms", "TTFT", "ms"), Column("output_tokens", "Out tokens", "int"),
        Column("status", "Status", "status"),
    ], rows=[{"start_time": call.start_time, "name": call.name or call.model, "model": call.model,
              "feature": call.feature, "latency_ms": call.latency_ms, "status": call.status,
              "time_to_first_token_ms": call.time_to_first_token_ms, "output_tokens": call.output_tokens,
              "name_url": trace_url(page, call.trace_id, f"#span-{call.id}")} for call in data.slowest])
    return page.render("dashboards/latency.html", {
        "data": data, "by_label": by_label, "group_table": groups,
        "breakdowns": [(name, LABELS[name]) for name in BREAKDOWNS],
        "charts": {name: figure for name, figure in figures.items() if figure},
    }, tables=[groups, slowest])
