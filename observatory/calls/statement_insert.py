"""Storing calls with one statement that skips those already stored.

The statement stores the new calls, their content, their traces' running totals and the
minutes rollups must recompute, and answers which rows were new: a call already stored (same
project, trace, span and start time: a client retry) is left as it is. Its rows come from a
JSON parameter for small batches (`SMALL_BATCH`), else from a per-connection staging table
filled with COPY.
"""

from __future__ import annotations

import weakref
from contextlib import nullcontext

import msgspec
from django.db import connections, transaction

from observatory.calls.models import MODEL_CALL_KINDS
from observatory.calls.rows import CALL_COLUMNS, CALL_NAMES, CONTENT_COLUMNS
from observatory.prepared import server_cursor
from observatory.tenancy.recent_keys import GUARD_OK_SQL

# The record's position in the batch, so the result can say which records were new.
_STAGING_COLUMNS = (("position", "int4"),) + CALL_COLUMNS + CONTENT_COLUMNS

# A temporary table per connection, reused by every batch on it: creating one per request
# would churn the system catalogue at thousands of requests per second. Made afresh on each
# new connection, since a session a pooler keeps may still hold one an older release made.
# Each staged row draws its call id as it arrives, so the statement below finds a row's content
# and position by id (hash joins on one integer) instead of sorting both sides on the identity.
# An id drawn for an event already stored is left unused, as a sequence allows.
#
# The insert statement empties the table itself (DELETE ... RETURNING), so outside a transaction
# a batch is two statements in autocommit, COPY then insert, instead of BEGIN, COPY, insert and
# COMMIT: three round trips instead of five, and no truncation of the table's file at every
# commit (as ON COMMIT DELETE ROWS did). The COPY commits only temporary rows, which PostgreSQL
# neither writes to the WAL nor waits to flush. Deleted rows leave dead space that nothing
# vacuums in a temporary table, so the table is truncated once enough rows have passed through.
_NEXT_CALL_ID = "nextval('calls_call_id_seq')"
_DROP_STAGING = "DROP TABLE IF EXISTS pg_temp.calls_staging"
_CREATE_STAGING = "CREATE TEMP TABLE calls_staging (id bigint NOT NULL DEFAULT {}, {})".format(
    _NEXT_CALL_ID, ", ".join(f"{name} {kind}" for name, kind in _STAGING_COLUMNS)
)
_TRUNCATE_STAGING = "TRUNCATE calls_staging"
STAGED_ROWS_BEFORE_TRUNCATE = 5_000
# Raw connections known to have an empty staging table → rows staged since it was last made or
# truncated; forgotten with the connection.
_staging_tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_COPY_STAGING = "COPY calls_staging ({}) FROM STDIN (FORMAT BINARY)".format(
    ", ".join(name for name, _ in _STAGING_COLUMNS)
)

# A guard that fails (see observatory.tenancy.recent_keys) stores nothing and answers this position.
_GUARD_FAILED = -1

# One statement stores the new calls, their content and their traces' totals. Rows go in
# identity order and traces in id order, so concurrent batches lock in the same order and
# cannot deadlock (identity in byte order, "C": any fixed order will do, and it sorts faster
# than the database's linguistic collation). Tokens and cost are summed over model calls only:
# a workflow span that reports its children's usage as its own would otherwise be counted twice.
_INSERT = """
WITH {staged},
guard AS MATERIALIZED (SELECT {guard} AS ok),
inserted AS (
    INSERT INTO calls_call (id, {columns}, ingested_at)
    SELECT id, {select_columns}, now()
    FROM staged
    WHERE (SELECT ok FROM guard)
    ORDER BY trace_id COLLATE "C", span_id COLLATE "C", start_time
    ON CONFLICT (project_id, trace_id, span_id, start_time) DO NOTHING
    RETURNING id, project_id, trace_id, span_id, parent_span_id, name, kind, start_time, end_time,
              user_id, session_id, environment, release, tags, status,
              input_tokens, output_tokens, total_tokens, cost, cost_source
), content AS (
    INSERT INTO calls_callcontent (call_id, project_id, start_time, input, output, metadata)
    SELECT s.id, s.project_id, s.start_time,
           s.content_input::jsonb, s.content_output::jsonb, s.content_metadata::jsonb
    FROM staged s
    WHERE s.id IN (SELECT id FROM inserted)
      AND (s.content_input IS NOT NULL OR s.content_output IS NOT NULL OR s.content_metadata IS NOT NULL)
), changed AS (
    INSERT INTO calls_changedminute (project_id, minute, marked_at)
    SELECT DISTINCT project_id, date_trunc('minute', start_time), now() FROM inserted
), trace_tags AS (
    SELECT trace_id, array_agg(DISTINCT tag) AS tags
    FROM inserted, unnest(inserted.tags) AS tag
    GROUP BY trace_id
), traces AS (
    INSERT INTO calls_trace AS t (
        project_id, trace_id, name, start_time, end_time, user_id, session_id, environment, release,
        tags, span_count, model_call_count, error_count, input_tokens, output_tokens, total_tokens,
        cost, unpriced_call_count, updated_at
    )
    SELECT i.project_id, i.trace_id,
           (array_agg(i.name ORDER BY i.start_time) FILTER (WHERE i.parent_span_id IS NULL))[1],
           min(i.start_time),
           max(coalesce(i.end_time, i.start_time)),
           (array_agg(i.user_id ORDER BY i.start_time) FILTER (WHERE i.user_id IS NOT NULL))[1],
           (array_agg(i.session_id ORDER BY i.start_time) FILTER (WHERE i.session_id IS NOT NULL))[1],
           (array_agg(i.environment ORDER BY i.start_time) FILTER (WHERE i.environment IS NOT NULL))[1],
           (array_agg(i.release ORDER BY i.start_time) FILTER (WHERE i.release IS NOT NULL))[1],
           coalesce(min(tt.tags), '{{}}'),
           count(*),
           count(*) FILTER (WHERE i.kind IN ({model_kinds})),
           count(*) FILTER (WHERE i.status = 'error'),
           coalesce(sum(i.input_tokens) FILTER (WHERE i.kind IN ({model_kinds})), 0),
           coalesce(sum(i.output_tokens) FILTER (WHERE i.kind IN ({model_kinds})), 0),
           coalesce(sum(i.total_tokens) FILTER (WHERE i.kind IN ({model_kinds})), 0),
           coalesce(sum(i.cost) FILTER (WHERE i.kind IN ({model_kinds})), 0),
           count(*) FILTER (WHERE i.cost_source = 'unknown'),
           now()
    FROM inserted i
    LEFT JOIN trace_tags tt ON tt.trace_id = i.trace_id
    GROUP BY i.project_id, i.trace_id
    ORDER BY i.project_id, i.trace_id
    ON CONFLICT (project_id, trace_id) DO UPDATE SET
        name = coalesce(t.name, EXCLUDED.name),
        start_time = least(t.start_time, EXCLUDED.start_time),
        end_time = greatest(t.end_time, EXCLUDED.end_time),
        user_id = coalesce(t.user_id, EXCLUDED.user_id),
        session_id = coalesce(t.session_id, EXCLUDED.session_id),
        environment = coalesce(t.environment, EXCLUDED.environment),
        release = coalesce(t.release, EXCLUDED.release),
        tags = CASE WHEN EXCLUDED.tags = '{{}}' THEN t.tags
                    ELSE ARRAY(SELECT DISTINCT unnest(t.tags || EXCLUDED.tags)) END,
        span_count = t.span_count + EXCLUDED.span_count,
        model_call_count = t.model_call_count + EXCLUDED.model_call_count,
        error_count = t.error_count + EXCLUDED.error_count,
        input_tokens = t.input_tokens + EXCLUDED.input_tokens,
        output_tokens = t.output_tokens + EXCLUDED.output_tokens,
        total_tokens = t.total_tokens + EXCLUDED.total_tokens,
        cost = t.cost + EXCLUDED.cost,
        unpriced_call_count = t.unpriced_call_count + EXCLUDED.unpriced_call_count,
        updated_at = EXCLUDED.updated_at
)
SELECT s.position FROM staged s WHERE s.id IN (SELECT id FROM inserted)
UNION ALL SELECT {guard_failed} FROM guard WHERE NOT ok
"""
_INSERT_PARTS = {
    "guard": GUARD_OK_SQL,
    "guard_failed": _GUARD_FAILED,
    "columns": ", ".join(CALL_NAMES),
    "select_columns": ", ".join("metadata::jsonb" if name == "metadata" else name for name in CALL_NAMES),
    "model_kinds": ", ".join(f"'{kind}'" for kind in sorted(MODEL_CALL_KINDS)),
}
_INSERT_STAGED = _INSERT.format(staged="staged AS (DELETE FROM calls_staging RETURNING *)", **_INSERT_PARTS)

# Batches this small skip the staging table: their rows travel as one JSON parameter, expanded
# by json_to_recordset into the CTE the staged rows otherwise come from, so both paths run the
# same statement. One round trip instead of two pays off below this size; above it COPY is
# faster (measured: the server spent 87-90 ms per 1,000 events of 100-event batches this way,
# against 61-76 ms through COPY). JSON because psycopg adapts one string far faster than one
# array per column; the columns holding JSON text are embedded as JSON. As json rather than
# jsonb: the server only scans the parameter, and builds jsonb of the content columns alone
# (3% fewer server instructions per statement under callgrind than building all of it).
SMALL_BATCH = 16
_json_encoder = msgspec.json.Encoder(decimal_format="number")
_JSON_COLUMNS = frozenset({"metadata", "content_input", "content_output", "content_metadata"})
_STAGING_NAMES = [name for name, _ in _STAGING_COLUMNS]
_JSON_POSITIONS = [index for index, name in enumerate(_STAGING_NAMES) if name in _JSON_COLUMNS]
_INSERT_FROM_JSON = _INSERT.format(
    staged="staged AS MATERIALIZED (SELECT {} AS id, * FROM json_to_recordset(%(rows)s::json) AS s({}))".format(
        _NEXT_CALL_ID,
        ", ".join(f"{name} {'jsonb' if name in _JSON_COLUMNS else kind}" for name, kind in _STAGING_COLUMNS),
    ),
    **_INSERT_PARTS,
)


def _rows_json(rows: list[tuple]) -> bytes:
    objects = []
    for row in rows:
        values = list(row)
        for index in _JSON_POSITIONS:
            if values[index] is not None:
                values[index] = msgspec.Raw(values[index].encode())
        objects.append(dict(zip(_STAGING_NAMES, values, strict=True)))
    return _json_encoder.encode(objects)


def rows_insert(rows: list[tuple], *, guard: str | None, using: str) -> set[int] | None:
    """Store the rows; the positions of those that were new, or None when the guard failed."""
    database = connections[using]
    # Outside an enclosing transaction each statement commits on its own: the insert is one
    # statement, so its calls, content and totals commit together, and execute() returns once
    # they have. Prepared: the insert is parsed and planned once per connection instead of on
    # every batch, which was most of a small batch's database time.
    # Connections that are not kept (DATABASE_CONN_MAX_AGE=0, as the README asks behind a
    # pooler in transaction mode) stage in one transaction: a pooler could otherwise run the
    # COPY and the insert in two server sessions, each with its own staging table.
    small = len(rows) <= SMALL_BATCH
    one_transaction = database.in_atomic_block or (not small and database.settings_dict["CONN_MAX_AGE"] == 0)
    with transaction.atomic(using=using) if one_transaction else nullcontext(), server_cursor(using) as cursor:
        if small:
            cursor.execute(_INSERT_FROM_JSON, {"rows": _rows_json(rows).decode(), "guard": guard}, prepare=True)
        else:
            raw = cursor.connection
            try:
                _stage(cursor, raw, rows, using=using)
                cursor.execute(_INSERT_STAGED, {"guard": guard}, prepare=True)
            except BaseException:
                # Rows may be left staged (the insert failed after the COPY committed them):
                # the next batch on this connection makes the table afresh.
                _staging_tables.pop(raw, None)
                raise
        inserted = {row[0] for row in cursor.fetchall()}
    return None if _GUARD_FAILED in inserted else inserted


def _stage(cursor, raw, rows: list[tuple], *, using: str) -> None:
    """COPY rows into this connection's empty staging table."""
    staged = _staging_tables.get(raw, 0)
    if raw not in _staging_tables:
        cursor.execute(_DROP_STAGING)
        cursor.execute(_CREATE_STAGING)
        # Remembered once committed (at once in autocommit): a rolled-back transaction takes
        # the table along.
        transaction.on_commit(lambda: _staging_tables.setdefault(raw, 0), using=using)
    elif staged >= STAGED_ROWS_BEFORE_TRUNCATE:
        cursor.execute(_TRUNCATE_STAGING)  # gives back the dead space deleted rows left
        staged = 0
    with cursor.copy(_COPY_STAGING) as copy:
        copy.set_types([kind for _, kind in _STAGING_COLUMNS])
        for row in rows:
            copy.write_row(row)
    if raw in _staging_tables:
        _staging_tables[raw] = staged + len(rows)
