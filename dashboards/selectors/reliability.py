"""The Reliability page: whether the safety nets around model calls work (caches, retries,
fallbacks, provider limits, timeouts, content filters), runaway loops, and the readiness
scorecard. Rates come from rollups; fallback pairs and loops from their partial indexes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dashboards.selectors.common import NO_INTERVAL, window_rows
from dashboards.timerange import TimeRange
from observatory.calls.models import Trace
from observatory.reliability.scorecard import Scorecard, scorecard_get
from observatory.reliability.selectors import FallbackPair, fallback_pairs, loops_list
from observatory.tenancy.models import Project

RATES = ["cache_hit_rate", "retry_rate", "fallback_rate", "rate_limit_rate", "server_error_rate", "timeout_rate",
         "content_filter_rate"]
TOTALS = ["count", "cache_hits", "cache_saved_cost", "retries", "retries_per_call", "fallbacks",
          "fallback_success_rate", "rate_limited", "server_errors", "timeouts", "input_blocked", "output_flagged",
          *RATES]
PER_PROVIDER = ["count", "rate_limit_rate", "server_error_rate", "timeout_rate", "retry_rate", "fallback_rate"]


@dataclass
class Reliability:
    totals: dict[str, Any]
    series: list[dict[str, Any]]  # RATES and savings per bucket
    provider_series: list[dict[str, Any]]  # 429 and 5xx rates per bucket and provider
    providers: list[dict[str, Any]]  # PER_PROVIDER over the range, busiest first
    fallbacks: list[FallbackPair]
    loops: list[Trace]
    scorecard: Scorecard

    @property
    def has_data(self) -> bool:
        return bool(self.totals.get("count"))


def reliability_get(*, project: Project, time_range: TimeRange, filters: Mapping[str, Sequence[str]],
                    now: datetime) -> Reliability:
    common = {"project": project, "time_range": time_range, "filters": filters}
    totals = window_rows(**common, metrics=TOTALS, interval=NO_INTERVAL)
    return Reliability(
        totals=totals[0] if totals else {},
        series=window_rows(**common, metrics=[*RATES, "cache_saved_cost", "count"]),
        provider_series=window_rows(**common, metrics=["count", "rate_limit_rate", "server_error_rate"],
                                    group_by=["provider"]),
        providers=window_rows(**common, metrics=PER_PROVIDER, group_by=["provider"], interval=NO_INTERVAL,
                              order_by="-count"),
        fallbacks=fallback_pairs(project=project, start=time_range.start, end=time_range.end, filters=filters),
        loops=loops_list(project=project, start=time_range.start, end=time_range.end),
        # The checklist is about the whole project: the page's filters narrow the analytics only.
        scorecard=scorecard_get(project=project, start=time_range.start, end=time_range.end, now=now),
    )
