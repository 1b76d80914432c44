"""The durable write path shared by every way in: price, redact, then COPY and insert.

`calls_write` returns only after the transaction that stores the calls, their content, their
traces' running totals and the minutes rollups must recompute has committed, so a caller may
acknowledge what it reports as accepted. A call already stored (same project, trace, span
and start time: a client retry) is reported as a duplicate and changes nothing.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from observatory.calls.models import MODEL_CALL_KINDS, CostSource
from observatory.calls.records import MAX_INLINE_METADATA_BYTES, CallRecord
from observatory.calls.redaction import mask_value, may_hold_a_finding
from observatory.prepared import server_cursor, with_live_connection
from observatory.pricing.services import COST_QUANTUM, PriceBook
from observatory.pricing.usage import TokenUsage
from observatory.tenancy.models import Project, RedactionMode
from observatory.tenancy.recent_keys import GUARD_OK_SQL

# (column, type in the staging table). The json columns arrive as text and are cast once.
_CALL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("project_id", "bigint"),
    ("trace_id", "text"),
    ("span_id", "text"),
    ("parent_span_id", "text"),
    ("name", "text"),
    ("kind", "text"),
    ("start_time", "timestamptz"),
    ("end_time", "timestamptz"),
    ("latency_ms", "float8"),
    ("time_to_first_token_ms", "float8"),
    ("provider", "text"),
    ("model", "text"),
    ("input_tokens", "int4"),
    ("cached_input_tokens", "int4"),
    ("cache_write_tokens", "int4"),
    ("output_tokens", "int4"),
    ("reasoning_tokens", "int4"),
    ("total_tokens", "int4"),
    ("cost", "numeric"),
    ("cost_source", "text"),
    ("finish_reason", "text"),
    ("status", "text"),
    ("error_type", "text"),
    ("error_message", "text"),
    ("user_id", "text"),
    ("session_id", "text"),
    ("environment", "text"),
    ("release", "text"),
    ("feature", "text"),
    ("prompt_name", "text"),
    ("prompt_version", "text"),
    ("tags", "text[]"),
    ("metadata", "text"),
    ("cache_hit", "bool"),
    ("cache_kind", "text"),
    ("cache_saved_cost", "numeric"),
    ("attempt", "int2"),
    ("retry_of", "text"),
    ("fallback_from_provider", "text"),
    ("fallback_from_model", "text"),
    ("http_status", "int2"),
    ("timeout_ms", "float8"),
    ("max_tokens", "int4"),
    ("streamed", "bool"),
    ("content_filter", "text"),
    ("input_hash", "int8"),
)
_CONTENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("content_input", "text"),
    ("content_output", "text"),
    ("content_metadata", "text"),
)
# The record's position in the batch, so the result can say which records were new.
_STAGING_COLUMNS = (("position", "int4"),) + _CALL_COLUMNS + _CONTENT_COLUMNS
_CALL_NAMES = [name for name, _ in _CALL_COLUMNS]

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
    "columns": ", ".join(_CALL_NAMES),
    "select_columns": ", ".join("metadata::jsonb" if name == "metadata" else name for name in _CALL_NAMES),
    "model_kinds": ", ".join(f"'{kind}'" for kind in sorted(MODEL_CALL_KINDS)),
}
_INSERT_STAGED = _INSERT.format(staged="staged AS (DELETE FROM calls_staging RETURNING *)", **_INSERT_PARTS)

# jsonb refuses the NUL character; an escaped backslash before "u0000" is left alone.
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
_json_encoder = msgspec.json.Encoder(decimal_format="number")


@dataclass
class WriteResult:
    """Positions in the input sequence: newly stored, or already stored before. `stale` when
    the write's guard failed and nothing was stored."""

    accepted: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    stale: bool = False


# Batches this small skip the staging table: their rows travel as one JSON parameter, expanded
# by jsonb_to_recordset into the CTE the staged rows otherwise come from, so both paths run the
# same statement. One round trip instead of two pays off below this size; above it COPY is
# faster (measured: the server spent 87-90 ms per 1,000 events of 100-event batches this way,
# against 61-76 ms through COPY). JSON because psycopg adapts one string far faster than one
# array per column, and the columns holding JSON text are embedded as JSON, so the server
# parses them once.
SMALL_BATCH = 16
_JSON_COLUMNS = frozenset({"metadata", "content_input", "content_output", "content_metadata"})
_STAGING_NAMES = [name for name, _ in _STAGING_COLUMNS]
_JSON_POSITIONS = [index for index, name in enumerate(_STAGING_NAMES) if name in _JSON_COLUMNS]
_INSERT_FROM_JSON = _INSERT.format(
    staged="staged AS MATERIALIZED (SELECT {} AS id, * FROM jsonb_to_recordset(%(rows)s::jsonb) AS s({}))".format(
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


def clean_text(value: str | None) -> str | None:
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "\ufffd")


def _float(value: float | None) -> float | None:
    # A whole number of milliseconds may arrive as an int; an array parameter takes one type.
    return None if value is None else float(value)


def json_text(value: Any) -> str:
    text = _json_encoder.encode(value).decode("utf-8")
    if "\\u0000" in text:
        text = _JSON_NUL.sub(lambda m: m.group(1) + "\\ufffd", text)
    return text


def input_hash_key() -> bytes:
    return hashlib.blake2b(settings.SECRET_KEY.encode(), digest_size=32, person=b"obs-input").digest()


def input_hash(prompt_json: str, *, key: bytes) -> int:
    """A keyed 63-bit hash of a prompt (as JSON text): equal prompts hash equal, and without the
    key (derived from SECRET_KEY) nobody can test a guessed prompt against the stored hash."""
    digest = hashlib.blake2b(prompt_json.encode(), digest_size=8, key=key).digest()
    return int.from_bytes(digest, "big", signed=True)


def kept_masked(value: Any, redaction: str) -> Any:
    """Free text beside the content (feedback comments here; metadata through
    RowBuilder.metadata_json, on its JSON text): kept in every redaction mode, masked unless
    the project stores content as sent."""
    if not value or redaction == RedactionMode.STORE:
        return value
    return mask_value(value)


def _masked_json(value: Any, sent: str) -> str:
    """`sent` (the JSON text of `value`) with findings masked. The text is screened once; only
    a value that may hold a finding is masked string by string and encoded again, which spares
    most content the per-string work."""
    return json_text(mask_value(value)) if may_hold_a_finding(sent) else sent


class RowBuilder:
    """Turns records into staging rows for one project: prices, redacts, encodes."""

    def __init__(self, project: Project) -> None:
        self.project_id = project.pk
        self.redaction = project.redaction_mode
        self.prices = PriceBook(project=project)
        self.hash_key = input_hash_key()

    def content_json(self, value: Any) -> tuple[str | None, str | None]:
        """(content as sent, content as the project's redaction mode stores it), as JSON text."""
        if value is None:
            return None, None
        sent = json_text(value)
        if self.redaction == RedactionMode.DROP:
            return sent, None
        return sent, self._kept_json(value, sent)

    def metadata_json(self, value: dict[str, Any] | None) -> str | None:
        """Metadata as JSON text, kept in every redaction mode (see kept_masked)."""
        if not value:
            return None
        return self._kept_json(value, json_text(value))

    def _kept_json(self, value: Any, sent: str) -> str:
        """kept_masked's rule on JSON text: as sent when the project stores content as sent,
        else masked (`sent` is the JSON text of `value`)."""
        return sent if self.redaction == RedactionMode.STORE else _masked_json(value, sent)

    def row(self, record: CallRecord) -> tuple:
        end_time = record.end_time
        latency_ms = record.latency_ms
        if latency_ms is None and end_time is not None:
            latency_ms = (end_time - record.start_time).total_seconds() * 1000
        elif end_time is None and latency_ms is not None:
            end_time = record.start_time + timedelta(milliseconds=latency_ms)

        cache_hit = True if record.cache_hit is None and record.cache_kind is not None else record.cache_hit
        cache_saved_cost = None
        if cache_hit:
            # Nothing was paid to the provider unless the client says otherwise (a semantic
            # cache's embedding); what the call would have cost is what the hit saved.
            cache_saved_cost = record.cache_saved_cost
            if cache_saved_cost is None and record.model:
                cache_saved_cost = self._price(record, client_cost=None).cost
            if record.cost is not None:
                cost, cost_source = record.cost.quantize(COST_QUANTUM), CostSource.CLIENT
            else:
                cost, cost_source = Decimal(0), CostSource.CACHE
        elif record.cost is not None or record.kind in MODEL_CALL_KINDS:
            priced = self._price(record, client_cost=record.cost)
            cost, cost_source = priced.cost, priced.source
        else:
            cost, cost_source = None, CostSource.NONE
        content_filter = record.content_filter
        if content_filter is None and record.finish_reason == "content_filter":
            content_filter = "output_flagged"
        # A retry that does not say which attempt it is was at least the second.
        attempt = 2 if record.attempt is None and record.retry_of else record.attempt

        sent_input, input_json = self.content_json(record.input)
        output_json = self.content_json(record.output)[1]
        hashed = record.input_hash
        if hashed is None and sent_input is not None and record.kind in MODEL_CALL_KINDS:
            # The prompt as sent, whatever redaction stores: masking must not hide a loop.
            hashed = input_hash(sent_input, key=self.hash_key)
        metadata_json = self.metadata_json(record.metadata) or "{}"
        content_metadata = None
        if len(metadata_json) > MAX_INLINE_METADATA_BYTES:
            metadata_json, content_metadata = "{}", metadata_json

        total_tokens = record.total_tokens
        if total_tokens is None:
            total_tokens = record.input_tokens + record.output_tokens
        return (
            self.project_id,
            clean_text(record.trace_id),
            clean_text(record.span_id),
            clean_text(record.parent_span_id),
            clean_text(record.name),
            record.kind,
            record.start_time,
            end_time,
            _float(latency_ms),
            _float(record.time_to_first_token_ms),
            clean_text(record.provider),
            clean_text(record.model),
            record.input_tokens,
            record.cached_input_tokens,
            record.cache_write_tokens,
            record.output_tokens,
            record.reasoning_tokens,
            total_tokens,
            cost,
            cost_source,
            clean_text(record.finish_reason),
            record.status,
            clean_text(record.error_type),
            clean_text(record.error_message),
            clean_text(record.user_id),
            clean_text(record.session_id),
            clean_text(record.environment),
            clean_text(record.release),
            clean_text(record.feature),
            clean_text(record.prompt_name),
            clean_text(record.prompt_version),
            [clean_text(tag) for tag in record.tags],
            metadata_json,
            cache_hit,
            record.cache_kind if cache_hit else None,
            None if cache_saved_cost is None else cache_saved_cost.quantize(COST_QUANTUM),
            attempt,
            clean_text(record.retry_of),
            clean_text(record.fallback_from_provider),
            clean_text(record.fallback_from_model),
            record.http_status,
            _float(record.timeout_ms),
            record.max_tokens,
            record.streamed,
            content_filter,
            hashed,
            input_json,
            output_json,
            content_metadata,
        )


    def _price(self, record: CallRecord, *, client_cost: Decimal | None):
        return self.prices.price(
            model=record.model,
            provider=record.provider,
            at=record.start_time,
            usage=TokenUsage(
                input_tokens=record.input_tokens,
                cached_input_tokens=record.cached_input_tokens,
                cache_write_tokens=record.cache_write_tokens,
                output_tokens=record.output_tokens,
            ),
            client_cost=client_cost,
        )


def calls_write(
    *, project: Project, records: Sequence[CallRecord], guard: str | None = None, using: str = DEFAULT_DB_ALIAS
) -> WriteResult:
    """Store `records` for `project` durably and exactly once; see the module docstring.

    `guard` (observatory.tenancy.recent_keys.write_guard) is checked in the same transaction:
    when it fails nothing is stored and the result is `stale`."""
    result = WriteResult()
    first_position: dict[tuple, int] = {}
    unique: list[tuple[int, CallRecord]] = []
    for position, record in enumerate(records):
        identity = (clean_text(record.trace_id), clean_text(record.span_id), record.start_time)
        if identity in first_position:
            result.duplicates.append(position)
            continue
        first_position[identity] = position
        unique.append((position, record))
    if not unique:
        return result

    builder = RowBuilder(project)
    rows = [(position, *builder.row(record)) for position, record in unique]
    # Safe to repeat on a new connection: a call already stored is only reported a duplicate.
    inserted = with_live_connection(lambda: _insert(rows, guard=guard, using=using), using)
    if inserted is None:
        return WriteResult(stale=True)
    for position, _ in unique:
        (result.accepted if position in inserted else result.duplicates).append(position)
    result.accepted.sort()
    result.duplicates.sort()
    return result


def _insert(rows: list[tuple], *, guard: str | None, using: str) -> set[int] | None:
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
