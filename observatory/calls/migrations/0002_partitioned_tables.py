"""The partitioned tables behind the unmanaged Call and CallContent models.

Both are range-partitioned by start_time with one partition per UTC day (created by
observatory.calls.partitions) and a DEFAULT partition as a safety net. Every unique key
contains start_time because PostgreSQL requires the partition key in it. No foreign key to
the project: it would cost an index probe per inserted row, and keeping project_id a plain
column lets the tables be distributed by project (Citus) later.
"""

from django.db import migrations

KINDS = "'generation', 'embedding', 'span', 'event', 'tool', 'retriever', 'agent', 'chain', 'guardrail', 'evaluator'"
COST_SOURCES = "'client', 'override', 'catalog', 'unknown', 'none'"

CREATE = f"""
CREATE SEQUENCE calls_call_id_seq AS bigint;

CREATE TABLE calls_call (
    id bigint NOT NULL DEFAULT nextval('calls_call_id_seq'),
    project_id bigint NOT NULL,
    trace_id text NOT NULL,
    span_id text NOT NULL,
    parent_span_id text,
    name text NOT NULL DEFAULT '',
    kind text NOT NULL,
    start_time timestamptz NOT NULL,
    end_time timestamptz,
    latency_ms double precision,
    time_to_first_token_ms double precision,
    provider text,
    model text,
    input_tokens integer NOT NULL DEFAULT 0,
    cached_input_tokens integer NOT NULL DEFAULT 0,
    cache_write_tokens integer NOT NULL DEFAULT 0,
    output_tokens integer NOT NULL DEFAULT 0,
    reasoning_tokens integer NOT NULL DEFAULT 0,
    total_tokens integer NOT NULL DEFAULT 0,
    cost numeric(20, 12),
    cost_source text NOT NULL,
    finish_reason text,
    status text NOT NULL DEFAULT 'ok',
    error_type text,
    error_message text,
    user_id text,
    session_id text,
    environment text,
    release text,
    feature text,
    prompt_name text,
    prompt_version text,
    tags text[] NOT NULL DEFAULT '{{}}',
    metadata jsonb NOT NULL DEFAULT '{{}}',
    ingested_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT calls_call_identity UNIQUE (project_id, trace_id, span_id, start_time),
    CONSTRAINT calls_call_kind_known CHECK (kind IN ({KINDS})),
    CONSTRAINT calls_call_status_known CHECK (status IN ('ok', 'error')),
    CONSTRAINT calls_call_cost_source_known CHECK (cost_source IN ({COST_SOURCES})),
    CONSTRAINT calls_call_cost_nonnegative CHECK (cost >= 0),
    CONSTRAINT calls_call_tokens_nonnegative CHECK (
        input_tokens >= 0 AND cached_input_tokens >= 0 AND cache_write_tokens >= 0
        AND output_tokens >= 0 AND reasoning_tokens >= 0 AND total_tokens >= 0
    ),
    CONSTRAINT calls_call_end_after_start CHECK (end_time IS NULL OR end_time >= start_time)
) PARTITION BY RANGE (start_time);

ALTER SEQUENCE calls_call_id_seq OWNED BY calls_call.id;
-- Time-range reads of one project: lists, exports, edge buckets of the metrics.
CREATE INDEX calls_call_project_time ON calls_call (project_id, start_time, id);
CREATE TABLE calls_call_default PARTITION OF calls_call DEFAULT;

CREATE TABLE calls_callcontent (
    call_id bigint NOT NULL,
    project_id bigint NOT NULL,
    start_time timestamptz NOT NULL,
    input jsonb,
    output jsonb,
    metadata jsonb,
    CONSTRAINT calls_callcontent_pkey PRIMARY KEY (call_id, start_time)
) PARTITION BY RANGE (start_time);
CREATE TABLE calls_callcontent_default PARTITION OF calls_callcontent DEFAULT;
"""

DROP = """
DROP TABLE IF EXISTS calls_callcontent;
DROP TABLE IF EXISTS calls_call;
"""


class Migration(migrations.Migration):
    dependencies = [("calls", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
