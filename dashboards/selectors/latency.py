"""The Latency page: percentiles and time to first token over time, throughput, slowest calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.selectors.common import NO_INTERVAL, window_rows
from dashboards.timerange import TimeRange
from observatory.calls.models import MODEL_CALL_KINDS, Call
from observatory.tenancy.models import Project

BREAKDOWNS = ("model", "feature")
SERIES = ["latency_p50", "latency_p95", "latency_p99", "ttft_p50", "ttft_p95", "ttft_p99"]
PER_GROUP = ["count", "error_rate", "latency_p50", "latency_p95", "latency_p99", "ttft_p50", "ttft_p95",
             "tokens_per_second_p50"]
SLOWEST = 20


@dataclass
class Latency:
    by: str
    series: list[dict[str, Any]]
    by_group_series: list[dict[str, Any]]  # latency_p95 and tokens/s per bucket and group
    groups: list[dict[str, Any]]  # PER_GROUP over the range, busiest first
    slowest: list[Call]


def slowest_calls(*, project: Project, time_range: TimeRange, filters: Mapping[str, Sequence[str]],
                  limit: int = SLOWEST) -> list[Call]:
    """The range's slowest model calls. Each day's partition yields its slowest first through
    calls_call_model_latency, so this reads about `limit` rows per day, not the whole range."""
    calls = Call.objects.filter(project=project, start_time__gte=time_range.start, start_time__lt=time_range.end,
                                kind__in=sorted(MODEL_CALL_KINDS), latency_ms__isnull=False)
    for name, values in filters.items():
        calls = calls.filter(**{f"{name}__in": values})
    return list(calls.order_by("-latency_ms")[:limit])


def latency_get(*, project: Project, time_range: TimeRange, filters: Mapping[str, Sequence[str]],
                by: str) -> Latency:
    by = by if by in BREAKDOWNS else BREAKDOWNS[0]
    common = {"project": project, "time_range": time_range, "filters": filters}
    return Latency(
        by=by,
        series=window_rows(**common, metrics=SERIES),
        by_group_series=window_rows(**common, metrics=["count", "latency_p95", "tokens_per_second_p50"],
                                    group_by=[by]),
        groups=window_rows(**common, metrics=PER_GROUP, group_by=[by], interval=NO_INTERVAL, order_by="-count"),
        slowest=slowest_calls(**common),
    )
