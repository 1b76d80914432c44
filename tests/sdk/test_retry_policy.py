"""How long the client waits before trying again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from observatory_sdk.retry import MAX_RETRY_AFTER, RETRYABLE_STATUSES, Backoff, retry_after_seconds

BACKOFF = Backoff(initial=0.5, maximum=30.0)


@pytest.mark.parametrize(("attempt", "step"), [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (40, 30.0)])
def test_waits_double_up_to_the_maximum_with_jitter_in_the_upper_half(attempt, step):
    delays = [BACKOFF.delay(attempt) for _ in range(200)]
    assert all(step / 2 <= delay <= step for delay in delays)
    assert len(set(delays)) > 1  # jittered, so clients that failed together spread out


def test_retry_after_is_a_floor_and_is_capped():
    assert BACKOFF.delay(1, retry_after=7) >= 7
    assert BACKOFF.delay(7, retry_after=0) >= 15  # a zero Retry-After does not undercut the backoff
    assert BACKOFF.delay(1, retry_after=86_400) == MAX_RETRY_AFTER


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("3") == 3
    assert retry_after_seconds("Sun, 22 Nov 2026 10:00:30 GMT", now=now) == 30
    assert retry_after_seconds("Sun, 22 Nov 2026 09:00:00 GMT", now=now) == 0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_only_timeouts_rate_limits_and_server_errors_are_retryable():
    assert {408, 429, 500, 503, 599} <= RETRYABLE_STATUSES
    assert not {400, 401, 403, 404, 409, 413, 415, 422} & RETRYABLE_STATUSES
