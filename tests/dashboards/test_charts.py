"""Charts: valid Plotly figures from selector rows, nothing drawn when there is nothing to draw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
import pytest

from dashboards import charts
from dashboards.timerange import TimeRange

START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
RANGE = TimeRange(key="custom", start=START, end=START + timedelta(hours=4), interval="hour", tz=ZoneInfo("UTC"))


def valid(figure: dict) -> dict:
    go.Figure(figure)  # raises on any property Plotly does not know
    return figure


def test_time_lines_fill_empty_buckets_with_zero_for_sums_and_gaps_for_percentiles():
    data = [{"bucket": START, "count": 3, "latency_p50": 1200.0},
            {"bucket": START + timedelta(hours=2), "count": 5, "latency_p50": 800.0}]
    figure = valid(charts.time_lines(data, metrics={"count": "Calls"}, time_range=RANGE, unit="count"))
    assert figure["data"][0]["y"] == [3, 0, 5, 0]
    assert figure["data"][0]["x"][0] == "2026-11-20 00:00"
    latency = valid(charts.time_lines(data, metrics={"latency_p50": "P50"}, time_range=RANGE, unit="ms"))
    assert latency["data"][0]["y"] == [1.2, None, 0.8, None]  # drawn in seconds
    assert latency["layout"]["yaxis"]["ticksuffix"] == " s"


def test_hours_show_in_the_projects_zone():
    paris = TimeRange(key="24h", start=START, end=START + timedelta(hours=2), interval="hour",
                      tz=ZoneInfo("Europe/Paris"))
    figure = charts.time_lines([{"bucket": START, "count": 1}], metrics={"count": "Calls"}, time_range=paris,
                               unit="count")
    assert figure["data"][0]["x"][0] == "2026-11-20 01:00"


def test_stacked_spend_keeps_the_biggest_groups_and_folds_the_rest_into_other():
    data = [{"bucket": START, "model": f"m{i}", "cost": Decimal(i + 1)} for i in range(12)]
    figure = valid(charts.grouped_time(data, group="model", metric="cost", time_range=RANGE, unit="money",
                                       stacked=True))
    names = [trace["name"] for trace in figure["data"]]
    assert names[:2] == ["m11", "m10"] and names[-1] == "other" and len(names) == 11
    assert figure["data"][-1]["y"][0] == 1 + 2  # m0 and m1
    assert figure["layout"]["barmode"] == "stack"


@pytest.mark.parametrize("build", [
    lambda: charts.time_lines([], metrics={"count": "Calls"}, time_range=RANGE, unit="count"),
    lambda: charts.time_lines([{"bucket": START, "count": 0}], metrics={"count": "Calls"}, time_range=RANGE,
                              unit="count"),
    lambda: charts.grouped_time([], group="model", metric="cost", time_range=RANGE, unit="money", stacked=True),
    lambda: charts.bars(["a", "b"], {"Cost": [None, None]}, unit="money"),
    lambda: charts.month_burn([], forecast=None, budgets=[], time_range=RANGE),
])
def test_nothing_to_draw_is_none_so_the_page_says_what_to_do(build):
    assert build() is None


def test_bars_leave_out_categories_without_a_value():
    figure = valid(charts.bars(["priced", "unknown"], {"Cost per call": [Decimal("0.01"), None]}, unit="money",
                               horizontal=True))
    assert figure["data"][0]["y"] == ["priced"] and figure["data"][0]["x"] == [0.01]


def test_month_burn_is_cumulative_with_forecast_and_budget_lines():
    forecast = SimpleNamespace(month_end=START + timedelta(days=10), projected=Decimal("30"))
    budget = SimpleNamespace(name="team", amount=Decimal("25"))
    figure = valid(charts.month_burn([(START, Decimal("1")), (START + timedelta(hours=1), Decimal("2"))],
                                     forecast=forecast, budgets=[budget], time_range=RANGE))
    spent, projected, line = figure["data"]
    assert spent["y"] == [1.0, 3.0] and projected["y"] == [3.0, 30.0] and line["y"] == [25.0, 25.0]


def test_sparkline_points_span_the_box_and_skip_missing_values():
    points = charts.sparkline([0, None, 10], width=100, height=20)
    assert points == "0.0,18.0 100.0,2.0"
    assert charts.sparkline([5]) == ""


def test_waterfall_nests_children_under_parents_and_survives_orphans_and_cycles():
    def span(span_id, parent, offset_ms, latency_ms, call_id):
        return SimpleNamespace(span_id=span_id, parent_span_id=parent, id=call_id, latency_ms=latency_ms,
                               start_time=START + timedelta(milliseconds=offset_ms),
                               end_time=START + timedelta(milliseconds=offset_ms + latency_ms))

    calls = [span("root", None, 0, 1000, 1), span("b", "root", 500, 500, 3), span("a", "root", 100, 200, 2),
             span("orphan", "missing", 50, 10, 4), span("x", "y", 0, 1, 5), span("y", "x", 0, 1, 6)]
    rows = charts.waterfall(calls)
    assert [(row.call.span_id, row.depth) for row in rows][:4] == [("root", 0), ("a", 1), ("b", 1), ("orphan", 0)]
    assert {row.call.span_id for row in rows} == {"root", "a", "b", "orphan", "x", "y"}
    a = next(row for row in rows if row.call.span_id == "a")
    assert (a.x, a.width, a.offset_ms) == (100, 200, 100.0)
