from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dashboards import charts
from dashboards.filters import METRIC_FILTERS
from dashboards.pages import Page, project_page
from dashboards.selectors.quality import quality_get
from dashboards.tables import Column, Table
from observatory.tenancy.roles import Capability


def _version_table(versions: list[dict]) -> tuple[Table, list[str]]:
    """Prompt versions side by side: one row per version, a column per metric and per score."""
    score_names = sorted({name for row in versions for name in row["scores"]})
    for row in versions:
        row["prompt"] = f"{row.get('prompt_name') or '(unnamed)'} · {row['prompt_version']}"
        for name in score_names:
            score = row["scores"].get(name)
            row[f"score:{name}"] = score["mean"] if score else None
            row[f"scored:{name}"] = score["count"] if score else None
        priced = (row.get("count") or 0) - (row.get("unpriced_count") or 0)
        row["cost_per_call"] = row["cost"] / priced if priced and row.get("cost") is not None else None
    columns = [Column("prompt", "Prompt · version"), Column("count", "Calls", "int"),
               Column("error_rate", "Error rate", "pct"), Column("truncation_rate", "Truncated", "pct"),
               Column("latency_p50", "P50 latency", "ms"), Column("latency_p95", "P95 latency", "ms"),
               Column("cost", "Spend", "money"), Column("cost_per_call", "Cost per call", "money")]
    for name in score_names:
        columns += [Column(f"score:{name}", f"{name} (mean)", "float"), Column(f"scored:{name}", f"{name} (n)", "int")]
    return Table(name="prompt-versions", title="Prompt versions side by side", rows=versions, columns=columns,
                 empty="No calls in this range name a prompt version (send prompt_name and prompt_version).",
                 note="Scores: the latest 2,000 of the range, each counted for the prompt versions its trace "
                      "(or scored call) used." if score_names else ""), score_names


@project_page("quality", filters=METRIC_FILTERS)
def quality(request: HttpRequest, page: Page) -> HttpResponse:
    data = quality_get(project=page.project, time_range=page.range, filters=page.filters,
                       with_comments=page.can(Capability.VIEW_CONTENT))
    versions, score_names = _version_table(data.versions)
    labels = [row["prompt"] for row in data.versions]
    figures = {
        "reasons": charts.grouped_time(data.reasons_series, group="finish_reason", metric="count",
                                       time_range=page.range, unit="count", stacked=True),
        "rates": charts.time_lines(data.rates_series, metrics={"truncation_rate": "Truncated (finish_reason length)",
                                                               "error_rate": "Errors"},
                                   time_range=page.range, unit="pct"),
        "versions_latency": charts.bars(labels, {"P50": [row.get("latency_p50") for row in data.versions],
                                                 "P95": [row.get("latency_p95") for row in data.versions]},
                                        unit="ms", horizontal=True),
        "versions_scores": charts.bars(labels, {name: [row[f"score:{name}"] for row in data.versions]
                                                for name in score_names}, unit="score", horizontal=True),
    }
    for row in data.error_types:
        if row.get("error_type"):
            row["error_type_url"] = page.url("traces", show="all", status="error", error_type=row["error_type"],
                                             model=row.get("model") or "")
    tables = [
        Table(name="finish-reasons", title="Finish reasons", rows=data.reasons, columns=[
            Column("finish_reason", "Finish reason"), Column("count", "Calls", "int"), Column("share", "Share", "pct")],
              note=f"Not counted: {data.without_reason:,} calls without a finish reason (embeddings and failed "
                   "calls)." if data.without_reason else ""),
        Table(name="error-types", title="Error types", rows=data.error_types, empty="No errors in this range.",
              columns=[Column("error_type", "Error type"), Column("model", "Model"), Column("count", "Errors", "int"),
                       Column("last_seen", "Last seen", "datetime")]),
        Table(name="scores", title="Scores and feedback", empty="No scores in this range. Send them with the "
              "Langfuse-compatible API (scores) or as evaluator calls.",
              rows=[{**row, "kind": row["data_type"],
                     "values": ", ".join(f"{value} ({n})" for value, n in row["values"])} for row in data.scores],
              columns=[Column("name", "Score"), Column("kind", "Type"), Column("count", "Scores", "int"),
                       Column("mean", "Mean (share of yes)", "float"), Column("values", "Most common values"),
                       Column("commented", "With a comment", "int")]),
        versions,
    ]
    return page.render("dashboards/quality.html", {
        "data": data, "charts": {name: figure for name, figure in figures.items() if figure},
    }, tables=tables)
