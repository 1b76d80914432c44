"""Signals about the safety nets around a call: caches, retries, fallbacks, provider answers,
timeouts, completion limits, streaming and content filters, plus a keyed hash of the prompt
for finding loops.

Every new column is nullable without a default, so adding it to the partitioned table only
changes the catalogue: no partition is rewritten and ingest is not held up. The checks are
added NOT VALID: rows already stored cannot break them (the columns are new, and a longer list
of cost sources admits every old value), so scanning every partition to prove it is skipped.
"""

from django.db import migrations

COLUMNS = {
    "cache_hit": "boolean",
    "cache_kind": "text",
    "cache_saved_cost": "numeric(20, 12)",
    "attempt": "smallint",
    "retry_of": "text",
    "fallback_from_provider": "text",
    "fallback_from_model": "text",
    "http_status": "smallint",
    "timeout_ms": "double precision",
    "max_tokens": "integer",
    "streamed": "boolean",
    "content_filter": "text",
    "input_hash": "bigint",
}
OLD_COST_SOURCES = "'client', 'override', 'catalog', 'unknown', 'none'"
COST_SOURCES = OLD_COST_SOURCES + ", 'cache'"
CHECKS = {
    "calls_call_cache_kind_known": "cache_kind IN ('exact', 'semantic')",
    "calls_call_content_filter_known": "content_filter IN ('passed', 'input_blocked', 'output_flagged')",
    "calls_call_attempt_positive": "attempt >= 1",
    "calls_call_cache_saved_nonnegative": "cache_saved_cost >= 0",
}

FORWARD = "\n".join([
    "ALTER TABLE calls_call " + ", ".join(f"ADD COLUMN {name} {kind}" for name, kind in COLUMNS.items()) + ";",
    "ALTER TABLE calls_call DROP CONSTRAINT calls_call_cost_source_known;",
    f"ALTER TABLE calls_call ADD CONSTRAINT calls_call_cost_source_known CHECK (cost_source IN ({COST_SOURCES}))"
    " NOT VALID;",
    *(f"ALTER TABLE calls_call ADD CONSTRAINT {name} CHECK ({check}) NOT VALID;" for name, check in CHECKS.items()),
])
BACKWARD = "\n".join([
    *(f"ALTER TABLE calls_call DROP CONSTRAINT {name};" for name in CHECKS),
    # Going back, a cache hit's cost (0, or what the client sent) is kept as the client's.
    "UPDATE calls_call SET cost_source = 'client' WHERE cost_source = 'cache';",
    "ALTER TABLE calls_call DROP CONSTRAINT calls_call_cost_source_known;",
    f"ALTER TABLE calls_call ADD CONSTRAINT calls_call_cost_source_known CHECK (cost_source IN ({OLD_COST_SOURCES}))"
    " NOT VALID;",
    "ALTER TABLE calls_call " + ", ".join(f"DROP COLUMN {name}" for name in COLUMNS) + ";",
])


class Migration(migrations.Migration):
    dependencies = [("calls", "0008_dashboard_indexes")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
