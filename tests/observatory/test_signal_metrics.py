"""Safety-net metrics (cache, retries, fallbacks, provider errors, timeouts, filters) are
exact, and read the same from raw calls, minute rollups and hour/day rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from observatory.calls.models import Call
from observatory.calls.services import calls_write
from observatory.metrics.selectors import METRICS, RATIO_METRICS, metrics_query
from tests.metrics_helpers import roll_up
from tests.records import record

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
HOUR = NOW.replace(minute=0) - timedelta(hours=2)  # a whole past hour, read from hour rows once rolled up


def calls():
    at = HOUR + timedelta(minutes=10)
    return [
        # A first try rate-limited, its retry succeeding after a 503 on a second retry.
        record(start_time=at, span_id="a1", attempt=1, http_status=429, status="error", error_type="RateLimitError",
               max_tokens=256, timeout_ms=30_000),
        record(start_time=at, span_id="a2", retry_of="a1", http_status=503, status="error",
               error_type="InternalServerError", max_tokens=256, timeout_ms=30_000),
        record(start_time=at, span_id="a3", attempt=3, retry_of="a2", http_status=200, max_tokens=256,
               timeout_ms=30_000, streamed=True, content_filter="passed"),
        # A primary that timed out, and its fallback on another provider.
        record(start_time=at, span_id="b1", provider="openai", model="gpt-4o", status="error",
               error_type="APITimeoutError", timeout_ms=10_000, latency_ms=10_000),
        record(start_time=at, span_id="b2", provider="anthropic", model="claude-3-5-haiku-latest",
               fallback_from_provider="openai", fallback_from_model="gpt-4o", http_status=200, streamed=True),
        # A fallback that failed too.
        record(start_time=at, span_id="c1", provider="anthropic", model="claude-3-5-haiku-latest",
               fallback_from_model="gpt-4o", status="error", http_status=529, error_type="overloaded"),
        # Cache hits: one exact, one semantic; a blocked input; a flagged output.
        record(start_time=at, span_id="d1", cache_kind="exact"),
        record(start_time=at, span_id="d2", cache_hit=True, cache_kind="semantic", cache_saved_cost=Decimal("0.5")),
        record(start_time=at, span_id="e1", content_filter="input_blocked", output_tokens=0),
        record(start_time=at, span_id="e2", finish_reason="content_filter"),
    ]


EXPECTED = {
    "count": 10, "cache_hits": 2, "semantic_cache_hits": 1, "retries": 2, "fallbacks": 2, "failed_fallbacks": 1,
    "rate_limited": 1, "server_errors": 2, "timeouts": 1, "input_blocked": 1, "output_flagged": 1,
    "filter_checked": 3, "max_tokens_set": 3, "timeout_set": 4, "streamed_calls": 2,
    "cache_hit_rate": 0.2, "retry_rate": 0.2, "retries_per_call": 0.25, "fallback_rate": 0.2,
    "fallback_success_rate": 0.5, "rate_limit_rate": 0.1, "server_error_rate": 0.2, "timeout_rate": 0.1,
    "content_filter_rate": 0.2, "max_tokens_share": 0.3, "timeout_set_share": 0.4, "streamed_share": 0.2,
    "content_filter_share": 0.3,
}


def window(project, **options):
    names = list(EXPECTED) + ["cache_saved_cost"]
    rows = metrics_query(project=project, start=HOUR, end=HOUR + timedelta(hours=1), metrics=names,
                         **options).rows
    return rows


@pytest.mark.parametrize("rolled_up", [False, True], ids=["raw calls", "rollups"])
def test_every_signal_metric_is_exact(project, rolled_up):
    calls_write(project=project, records=calls())
    if rolled_up:
        roll_up(project)
    (row,) = window(project)
    assert {name: row[name] for name in EXPECTED} == pytest.approx(EXPECTED)
    # The exact hit saved what the same call costs when it is not cached (a3 has the same
    # model and tokens); the semantic one what the client said.
    same_call = Call.objects.get(span_id="a3").cost
    assert same_call > 0 and row["cache_saved_cost"] == Decimal("0.5") + same_call


def test_provider_errors_per_provider_and_hour(project):
    calls_write(project=project, records=calls())
    roll_up(project)
    rows = metrics_query(project=project, start=HOUR, end=HOUR + timedelta(hours=1), interval="hour",
                         group_by=["provider"], metrics=["rate_limit_rate", "server_error_rate", "count"]).rows
    by_provider = {row["provider"]: row for row in rows}
    assert by_provider["openai"]["rate_limit_rate"] == pytest.approx(1 / 8)
    assert by_provider["openai"]["server_error_rate"] == pytest.approx(1 / 8)
    assert by_provider["anthropic"]["server_error_rate"] == pytest.approx(1 / 2)


def test_ratios_are_none_without_a_denominator(project):
    calls_write(project=project, records=[record(start_time=HOUR + timedelta(minutes=5))])
    (row,) = window(project)
    assert row["fallback_success_rate"] is None and row["fallback_rate"] == 0


def test_per_user_signal_metrics(project):
    calls_write(project=project, records=[record(start_time=HOUR + timedelta(minutes=5), user_id="u1", cache_kind="exact"),
                                          record(start_time=HOUR + timedelta(minutes=6), user_id="u1")])
    roll_up(project)
    (row,) = metrics_query(project=project, start=HOUR, end=HOUR + timedelta(hours=1), group_by=["user_id"],
                           metrics=["cache_hit_rate", "cache_saved_cost"]).rows
    assert row["cache_hit_rate"] == 0.5 and row["cache_saved_cost"] > 0


def test_every_ratio_is_a_published_metric():
    assert set(RATIO_METRICS) <= set(METRICS)
