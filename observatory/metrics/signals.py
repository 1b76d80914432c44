"""Rollup measures of the safety nets around calls: caches, retries, fallbacks, provider
errors, timeouts, content filters, and whether calls set the limits a production checklist asks
for. Each is a count (or, for cache savings, a USD sum) over a bucket's model calls, computed
from the signal columns of calls_call (see observatory.calls.records.CallRecord).
"""

from __future__ import annotations

# Signal columns the raw rows read, next to the dimensions (status is one of those).
SIGNAL_COLUMNS = (
    "cache_hit", "cache_kind", "cache_saved_cost", "attempt", "fallback_from_provider", "fallback_from_model",
    "http_status", "error_type", "timeout_ms", "max_tokens", "streamed", "content_filter",
)

# A call timed out when it failed and either its error or the provider's status says so:
# clients name the error differently (APITimeoutError, ReadTimeout, timeout, DeadlineExceeded).
TIMED_OUT = (
    "status = 'error' AND (error_type ~* 'time[ _-]?out|deadline' OR http_status IN (408, 504))"
)
FALLBACK = "(fallback_from_model IS NOT NULL OR fallback_from_provider IS NOT NULL)"

# measure -> SQL over one bucket's raw model calls
SIGNAL_MEASURES: dict[str, str] = {
    "cache_hits": "count(*) FILTER (WHERE cache_hit)",
    "semantic_cache_hits": "count(*) FILTER (WHERE cache_hit AND cache_kind = 'semantic')",
    "cache_saved_cost": "coalesce(sum(cache_saved_cost), 0)",
    "retries": "count(*) FILTER (WHERE attempt > 1)",
    "fallbacks": f"count(*) FILTER (WHERE {FALLBACK})",
    "failed_fallbacks": f"count(*) FILTER (WHERE {FALLBACK} AND status = 'error')",
    "rate_limited": "count(*) FILTER (WHERE http_status = 429)",
    "server_errors": "count(*) FILTER (WHERE http_status >= 500)",
    "timeouts": f"count(*) FILTER (WHERE {TIMED_OUT})",
    "input_blocked": "count(*) FILTER (WHERE content_filter = 'input_blocked')",
    "output_flagged": "count(*) FILTER (WHERE content_filter = 'output_flagged')",
    "filter_checked": "count(*) FILTER (WHERE content_filter IS NOT NULL)",
    "max_tokens_set": "count(*) FILTER (WHERE max_tokens IS NOT NULL)",
    "timeout_set": "count(*) FILTER (WHERE timeout_ms IS NOT NULL)",
    "streamed_calls": "count(*) FILTER (WHERE streamed)",
}
