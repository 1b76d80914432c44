"""Every chart on every page, built from selector results.

Plotly figures are plain dicts (`{"data": [...], "layout": {...}}`) in Plotly's JSON figure
format; pages put them in one `json_script` island and static/dashboards/app.js draws them
with the plotly.js bundled from the plotly package. Building dicts directly, rather than
through plotly.graph_objects, keeps a page's charts to microseconds; tests check each figure
against plotly's own validators. A builder returns None when there is nothing to draw, and
the page shows what to do instead of an empty axis.

Sparklines and the trace waterfall are small inline SVGs computed here (no script needed):
geometry goes in SVG attributes, which the Content-Security-Policy allows, unlike style
attributes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from dashboards.timerange import TimeRange
from observatory.metrics.services import BUCKET_WIDTH, bucket_floor

PALETTE = ("#2563eb", "#f97316", "#16a34a", "#db2777", "#7c3aed", "#0891b2", "#ca8a04", "#dc2626", "#4b5563",
           "#65a30d")
OTHER = "other"
OTHER_COLOR = "#cbd5e1"
# Metrics that are sums: a bucket without calls is a zero. Others (percentiles, rates) are gaps.
SUMS = frozenset({"count", "errors", "cost", "unpriced_count", "input_tokens", "output_tokens", "total_tokens"})
# Axis formats per unit. Latencies are stored in milliseconds and drawn in seconds (LLM calls
# take seconds; "30,000 ms" reads worse than "30 s").
_UNITS: dict[str, dict[str, Any]] = {
    "money": {"tickprefix": "$", "hoverformat": ",.4f"},
    "ms": {"ticksuffix": " s", "hoverformat": ",.3f"},
    "pct": {"tickformat": ".1%", "hoverformat": ".2%"},
    "count": {"tickformat": ",d", "hoverformat": ",d"},
    "tps": {"ticksuffix": " tok/s", "tickformat": ",.0f", "hoverformat": ",.0f"},
    "score": {"tickformat": ".2f", "hoverformat": ".3f", "range": [0, 1.05]},
}
_SCALE = {"ms": 0.001}


def _number(value: Any, unit: str = "") -> float | None:
    if value is None:
        return None
    return float(value) * _SCALE.get(unit, 1)


def _layout(unit: str, *, stacked: bool = False, height: int = 280, dates: bool = True,
            y_title: str | None = None) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 64, "r": 16, "t": 28, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12, "color": "#334155"},
        "hovermode": "x unified" if dates else "closest",
        "showlegend": True,
        # Above the plot: below it, legends collide with two-line date labels.
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "xanchor": "left", "yanchor": "bottom", "font": {"size": 11}},
        "xaxis": {"gridcolor": "#eef2f7", "linecolor": "#cbd5e1", "automargin": True, "tickangle": 0, "nticks": 6},
        "yaxis": {"gridcolor": "#eef2f7", "zerolinecolor": "#cbd5e1", "rangemode": "tozero", "automargin": True,
                  **_UNITS[unit]},
    }
    if dates:
        layout["xaxis"]["type"] = "date"
    if stacked:
        layout["barmode"] = "stack"
        layout["bargap"] = 0.15
    if y_title:
        layout["yaxis"]["title"] = {"text": y_title}
    return layout


def _x(bucket: datetime, interval: str, time_range: TimeRange) -> str:
    """Plotly reads wall-clock strings: hours and minutes in the project's zone, days as the
    UTC day they total (rollup days are UTC days)."""
    if interval == "day":
        return bucket.date().isoformat()
    return bucket.astimezone(time_range.tz).strftime("%Y-%m-%d %H:%M")


def _buckets(time_range: TimeRange) -> list[datetime]:
    width = BUCKET_WIDTH[time_range.interval]
    bucket, buckets = bucket_floor(time_range.start, time_range.interval), []
    while bucket < time_range.end:
        buckets.append(bucket)
        bucket += width
    return buckets


def _series(rows: Iterable[Mapping], metric: str, buckets: Sequence[datetime], unit: str = "") -> list[float | None]:
    by_bucket = {row["bucket"]: row.get(metric) for row in rows}
    blank = 0 if metric in SUMS else None
    return [_number(by_bucket.get(bucket, blank), unit) for bucket in buckets]


def _has_data(values: Iterable[float | None]) -> bool:
    return any(value for value in values)


def _joined(y: Sequence[float | None]) -> dict[str, Any]:
    """A percentile has no value in a bucket without calls. Such gaps are bridged, with a dot on
    each bucket that has a value, so that a sparse series reads as one line, not as fragments."""
    if None not in y:
        return {"mode": "lines"}
    return {"mode": "lines+markers", "connectgaps": True, "marker": {"size": 4}}


def time_lines(rows: Sequence[Mapping], *, metrics: Mapping[str, str], time_range: TimeRange, unit: str,
               dash: Mapping[str, str] | None = None) -> dict | None:
    """One line per metric over the range's buckets; `metrics` maps a metric to its label."""
    buckets = _buckets(time_range)
    x = [_x(bucket, time_range.interval, time_range) for bucket in buckets]
    data = []
    for index, (metric, label) in enumerate(metrics.items()):
        y = _series(rows, metric, buckets, unit)
        if not _has_data(y):
            continue
        line = {"width": 2, "color": PALETTE[index % len(PALETTE)]}
        if dash and metric in dash:
            line["dash"] = dash[metric]
        data.append({"type": "scatter", "name": label, "x": x, "y": y, "line": line, **_joined(y)})
    if not data:
        return None
    return {"data": data, "layout": _layout(unit)}


def _top_groups(rows: Sequence[Mapping], *, group: str, weight: str, top: int) -> list[str]:
    totals: dict[str, float] = {}
    for row in rows:
        key = row.get(group) or "(none)"
        totals[key] = totals.get(key, 0) + float(row.get(weight) or 0)
    return [key for key, _ in sorted(totals.items(), key=lambda item: -item[1])[:top]]


def grouped_time(rows: Sequence[Mapping], *, group: str, metric: str, time_range: TimeRange, unit: str,
                 stacked: bool = False, top: int = len(PALETTE), weight: str | None = None,
                 interval: str | None = None) -> dict | None:
    """`metric` per bucket, one trace per value of `group` (the `top` by `weight`, default the
    metric itself). Stacked sums fold the rest into "other"; lines of percentiles drop it."""
    if interval and interval != time_range.interval:
        time_range = TimeRange(key=time_range.key, start=time_range.start, end=time_range.end, interval=interval,
                               tz=time_range.tz)
    buckets = _buckets(time_range)
    x = [_x(bucket, time_range.interval, time_range) for bucket in buckets]
    keep = _top_groups(rows, group=group, weight=weight or metric, top=top)
    per_group: dict[str, list[Mapping]] = {key: [] for key in keep}
    rest: dict[datetime, float] = {}
    for row in rows:
        key = row.get(group) or "(none)"
        if key in per_group:
            per_group[key].append(row)
        elif stacked and row.get(metric) is not None:
            rest[row["bucket"]] = rest.get(row["bucket"], 0) + float(row[metric])
    data = []
    for index, key in enumerate(keep):
        y = _series(per_group[key], metric, buckets, unit)
        color = PALETTE[index % len(PALETTE)]
        if stacked:
            data.append({"type": "bar", "name": key, "x": x, "y": y, "marker": {"color": color}})
        else:
            # A group without calls in some buckets: joined across them, with a dot per bucket
            # that has a value, rather than scattered fragments of line.
            data.append({"type": "scatter", "name": key, "x": x, "y": y, "line": {"width": 1.5, "color": color},
                         **_joined(y)})
    if rest:
        data.append({"type": "bar", "name": OTHER, "x": x, "y": [rest.get(bucket, 0) for bucket in buckets],
                     "marker": {"color": OTHER_COLOR}})
    if not any(_has_data(trace["y"]) for trace in data):
        return None
    # The legend sits above the plot, three names to a line: room for it, not taken from the plot.
    return {"data": data, "layout": _layout(unit, stacked=stacked, height=260 + 18 * math.ceil(len(data) / 3))}


def bars(categories: Sequence[str], series: Mapping[str, Sequence[Any]], *, unit: str,
         horizontal: bool = False) -> dict | None:
    """Grouped bars, one colour per series, over named categories (not time). Categories
    with no value in any series (an unknown cost, a version never scored) are left out."""
    known = [index for index in range(len(categories)) if any(values[index] is not None for values in series.values())]
    categories = [categories[index] for index in known]
    data = []
    for index, (label, values) in enumerate(series.items()):
        values = [_number(values[position], unit) for position in known]
        if not _has_data(values):
            continue
        bar = {"type": "bar", "name": label, "marker": {"color": PALETTE[index % len(PALETTE)]}}
        if horizontal:
            bar.update(orientation="h", y=list(categories), x=values)
        else:
            bar.update(x=list(categories), y=values)
        data.append(bar)
    if not data:
        return None
    layout = _layout(unit, dates=False, height=max(220, 28 * len(categories) + 80) if horizontal else 280)
    if horizontal:
        layout["xaxis"], layout["yaxis"] = ({**layout["yaxis"], "rangemode": "tozero"},
                                            {"automargin": True, "autorange": "reversed"})
    layout["showlegend"] = len(data) > 1
    return {"data": data, "layout": layout}


def month_burn(points: Sequence[tuple[datetime, Decimal]], *, forecast: Any, budgets: Sequence[Any],
               time_range: TimeRange) -> dict | None:
    """Cumulative spend since the month began, the run-rate forecast to its end (dashed) and a
    horizontal line per budget (see dashboards.hooks)."""
    if not points or not any(cost for _, cost in points):
        return None
    total, x, y = Decimal(0), [], []
    for moment, cost in points:
        total += cost or 0
        x.append(moment.astimezone(time_range.tz).strftime("%Y-%m-%d %H:%M"))
        y.append(float(total))
    data: list[dict] = [{"type": "scatter", "mode": "lines", "name": "Spent", "x": x, "y": y,
                         "line": {"width": 2.5, "color": PALETTE[0]}, "fill": "tozeroy",
                         "fillcolor": "rgba(37,99,235,0.08)"}]
    end_x = None
    if forecast is not None:
        end_x = forecast.month_end.astimezone(time_range.tz).strftime("%Y-%m-%d %H:%M")
        data.append({"type": "scatter", "mode": "lines", "name": "Forecast", "x": [x[-1], end_x],
                     "y": [y[-1], float(forecast.projected)],
                     "line": {"width": 2, "dash": "dash", "color": PALETTE[1]}})
    for index, budget in enumerate(budgets):
        data.append({"type": "scatter", "mode": "lines", "name": f"Budget: {budget.name}", "x": [x[0], end_x or x[-1]],
                     "y": [float(budget.amount)] * 2,
                     "line": {"width": 1.5, "dash": "dot", "color": PALETTE[(index + 7) % len(PALETTE)]}})
    return {"data": data, "layout": _layout("money")}


def sparklines(rows: Sequence[Mapping], *, metrics: Iterable[str], time_range: TimeRange) -> dict[str, str]:
    """A sparkline per metric over the range's buckets (sums are 0 where a bucket is empty)."""
    buckets = _buckets(time_range)
    return {metric: sparkline(_series(rows, metric, buckets)) for metric in metrics}


def sparkline(values: Sequence[Any], *, width: int = 120, height: int = 28) -> str:
    """SVG polyline points for a sparkline in a width x height box; "" when there is no shape
    to draw (fewer than two points). Missing values are skipped."""
    known = [(index, float(value)) for index, value in enumerate(values) if value is not None]
    if len(known) < 2:
        return ""
    low, high = min(value for _, value in known), max(value for _, value in known)
    spread = (high - low) or 1.0
    step = width / max(1, len(values) - 1)
    return " ".join(f"{index * step:.1f},{height - 2 - (value - low) / spread * (height - 4):.1f}"
                    for index, value in known)


# --- Trace waterfall --------------------------------------------------------------------

WATERFALL_WIDTH = 1000  # SVG user units across the trace's duration


@dataclass(frozen=True)
class WaterfallRow:
    call: Any
    depth: int
    x: int  # start, in WATERFALL_WIDTH units from the trace's start
    width: int
    offset_ms: float


def waterfall(calls: Sequence[Any]) -> list[WaterfallRow]:
    """The trace's spans in tree order (children under their parent, by start time), each
    with its bar's position on a common time axis. A span whose parent never arrived is shown
    at the top level rather than lost."""
    if not calls:
        return []
    start = min(call.start_time for call in calls)
    end = max(call.end_time or call.start_time + timedelta(milliseconds=call.latency_ms or 0) for call in calls)
    total_ms = max((end - start).total_seconds() * 1000, 1.0)
    span_ids = {call.span_id for call in calls}
    children: dict[str | None, list[Any]] = {}
    for call in calls:
        parent = call.parent_span_id if call.parent_span_id in span_ids else None
        children.setdefault(parent, []).append(call)
    rows: list[WaterfallRow] = []
    seen: set[str] = set()

    def visit(parent: str | None, depth: int) -> None:
        for call in sorted(children.get(parent, []), key=lambda c: (c.start_time, c.id)):
            if call.span_id in seen:  # a cycle in parent ids (a client bug) must not loop forever
                continue
            seen.add(call.span_id)
            offset = (call.start_time - start).total_seconds() * 1000
            duration = call.latency_ms if call.latency_ms is not None else (
                ((call.end_time - call.start_time).total_seconds() * 1000) if call.end_time else 0)
            x = round(offset / total_ms * WATERFALL_WIDTH)
            rows.append(WaterfallRow(call=call, depth=min(depth, 8), x=min(x, WATERFALL_WIDTH - 2),
                                     width=max(2, round(duration / total_ms * WATERFALL_WIDTH)), offset_ms=offset))
            visit(call.span_id, depth + 1)

    visit(None, 0)
    # Spans only reachable through a cycle are still listed, at the top level.
    for call in calls:
        if call.span_id not in seen:
            children[None] = [call]
            visit(None, 0)
    return rows
