"""Writes that change what is already stored: trace annotations, scores, call patches.

calls_write (services.py) only ever inserts, which keeps the hot path simple. Langfuse's model
also lets a client name a trace, score it, and finish an observation in a later request; these
services do that, each idempotent: applying the same annotation, score or patch twice leaves
the same state as applying it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from observatory.calls.models import MODEL_CALL_KINDS, Call, CallContent, CostSource
from observatory.calls.records import CallPatch, CallRecord, ScoreRecord, TraceAnnotation
from observatory.calls.rows import CALL_NAMES, RowBuilder, clean_text, kept_masked
from observatory.tenancy.models import Project

_ANNOTATE = """
INSERT INTO calls_trace AS t (
    project_id, trace_id, name, start_time, end_time, user_id, session_id, environment, release,
    tags, input, output, metadata, span_count, model_call_count, error_count, input_tokens,
    output_tokens, total_tokens, cost, unpriced_call_count, updated_at
)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, 0, 0, 0, 0, 0, 0, 0, 0, now())
ON CONFLICT (project_id, trace_id) DO UPDATE SET
    name = coalesce(EXCLUDED.name, t.name),
    user_id = coalesce(EXCLUDED.user_id, t.user_id),
    session_id = coalesce(EXCLUDED.session_id, t.session_id),
    environment = coalesce(EXCLUDED.environment, t.environment),
    release = coalesce(EXCLUDED.release, t.release),
    tags = CASE WHEN EXCLUDED.tags = '{}' THEN t.tags ELSE ARRAY(SELECT DISTINCT unnest(t.tags || EXCLUDED.tags)) END,
    input = coalesce(EXCLUDED.input, t.input),
    output = coalesce(EXCLUDED.output, t.output),
    metadata = CASE WHEN EXCLUDED.metadata IS NULL THEN t.metadata
                    ELSE coalesce(t.metadata, '{}'::jsonb) || EXCLUDED.metadata END,
    updated_at = now()
"""

_SCORE = """
INSERT INTO calls_score AS s (
    project_id, score_id, trace_id, span_id, session_id, name, data_type, value, string_value,
    comment, source, timestamp, created_at
)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (project_id, score_id) DO UPDATE SET
    trace_id = EXCLUDED.trace_id, span_id = EXCLUDED.span_id, session_id = EXCLUDED.session_id,
    name = EXCLUDED.name, data_type = EXCLUDED.data_type, value = EXCLUDED.value,
    string_value = EXCLUDED.string_value, comment = EXCLUDED.comment, source = EXCLUDED.source,
    timestamp = EXCLUDED.timestamp
"""

# pg_advisory_xact_lock(namespace, project id), clear of the other advisory locks.
_SCORE_LOCK_NAMESPACE = 0x53434F52  # "SCOR"

_MODEL_KINDS = ", ".join(f"'{kind}'" for kind in sorted(MODEL_CALL_KINDS))
# Trace totals recomputed from the calls themselves, after patches changed some of them.
_RECOMPUTE_TRACES = f"""
UPDATE calls_trace t SET
    start_time = least(t.start_time, agg.start_time),
    end_time = greatest(t.end_time, agg.end_time),
    span_count = agg.span_count,
    model_call_count = agg.model_call_count,
    error_count = agg.error_count,
    input_tokens = agg.input_tokens,
    output_tokens = agg.output_tokens,
    total_tokens = agg.total_tokens,
    cost = agg.cost,
    unpriced_call_count = agg.unpriced_call_count,
    updated_at = now()
FROM (
    SELECT trace_id, min(start_time) AS start_time, max(coalesce(end_time, start_time)) AS end_time,
           count(*) AS span_count,
           count(*) FILTER (WHERE kind IN ({_MODEL_KINDS})) AS model_call_count,
           count(*) FILTER (WHERE status = 'error') AS error_count,
           coalesce(sum(input_tokens) FILTER (WHERE kind IN ({_MODEL_KINDS})), 0) AS input_tokens,
           coalesce(sum(output_tokens) FILTER (WHERE kind IN ({_MODEL_KINDS})), 0) AS output_tokens,
           coalesce(sum(total_tokens) FILTER (WHERE kind IN ({_MODEL_KINDS})), 0) AS total_tokens,
           coalesce(sum(cost) FILTER (WHERE kind IN ({_MODEL_KINDS})), 0) AS cost,
           count(*) FILTER (WHERE cost_source = 'unknown') AS unpriced_call_count
    FROM calls_call
    WHERE project_id = %s AND trace_id = ANY(%s)
    GROUP BY trace_id
) agg
WHERE t.project_id = %s AND t.trace_id = agg.trace_id
"""


def traces_annotate(
    *, project: Project, annotations: Sequence[TraceAnnotation], using: str = DEFAULT_DB_ALIAS
) -> None:
    """Create or update trace summaries with what the client said about whole traces."""
    if not annotations:
        return
    builder = RowBuilder(project)
    now = timezone.now()
    rows = []
    for note in sorted(annotations, key=lambda note: note.trace_id):  # a stable lock order
        moment = note.timestamp or now
        _, input_json, output_json, metadata_json = builder.json_columns(note.input, note.output, note.metadata)
        rows.append((
            project.pk, clean_text(note.trace_id), clean_text(note.name), moment, moment,
            clean_text(note.user_id), clean_text(note.session_id), clean_text(note.environment),
            clean_text(note.release), [clean_text(tag) for tag in note.tags],
            input_json, output_json, None if note.metadata is None else metadata_json or "{}",
        ))
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.executemany(_ANNOTATE, rows)


def scores_write(*, project: Project, scores: Sequence[ScoreRecord], using: str = DEFAULT_DB_ALIAS) -> None:
    """Store scores; a score sent again with the same id replaces the earlier one. A comment is
    free text from end users, redacted like metadata."""
    if not scores:
        return
    latest = {score.score_id: score for score in scores}  # the last word in one request wins
    rows = [
        (
            project.pk, clean_text(s.score_id), clean_text(s.trace_id), clean_text(s.span_id),
            clean_text(s.session_id), clean_text(s.name), s.data_type, s.value, clean_text(s.string_value),
            clean_text(kept_masked(s.comment, project.redaction_mode)), s.source, s.timestamp,
        )
        for s in sorted(latest.values(), key=lambda score: score.score_id)
    ]
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        # Each score's statement trigger adds it to its hourly rollup row (calls_scorehour),
        # and two requests with scores of the same names and hours, in other orders, would
        # lock those rows crosswise and deadlock. Score writes of one project take turns.
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_SCORE_LOCK_NAMESPACE, project.pk])
        cursor.executemany(_SCORE, rows)


@dataclass
class PatchResult:
    """Positions in the input: applied, naming a call that is not stored (yet), or invalid."""

    applied: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)


def _record_of(call: Call, *, metadata: dict[str, Any]) -> CallRecord:
    """The stored call as a record, with its cost kept only if the client had sent it (any
    other cost is computed again from the patched tokens)."""
    fields = {name: getattr(call, name) for name in CALL_NAMES if name not in ("project_id", "cost_source", "metadata")}
    if call.cost_source != CostSource.CLIENT:
        fields["cost"] = None
    return CallRecord(**fields, metadata=metadata)


def calls_patch(*, project: Project, patches: Sequence[CallPatch], using: str = DEFAULT_DB_ALIAS) -> PatchResult:
    """Apply patches to stored calls, reprice them, and recompute their traces' totals."""
    result = PatchResult()
    if not patches:
        return result
    builder = RowBuilder(project)
    touched_traces: set[str] = set()
    with transaction.atomic(using=using):
        for position, patch in enumerate(patches):
            call = (
                Call.objects.using(using)
                .select_for_update()
                .filter(project=project, trace_id=patch.trace_id, span_id=patch.span_id)
                .order_by("start_time")
                .first()
            )
            if call is None:
                result.missing.append(position)
                continue
            metadata = dict(call.metadata)
            if patch.metadata:
                # Large metadata lives with the content; merge into what is really stored.
                stored = CallContent.objects.using(using).filter(call_id=call.id, start_time=call.start_time).first()
                if stored is not None and stored.metadata:
                    metadata = dict(stored.metadata)
            try:
                merged = call_patched(_record_of(call, metadata=metadata), patch)
            except PatchInvalid as problem:
                result.invalid.append((position, str(problem)))
                continue
            row = builder.row(merged)
            columns = dict(zip(("position", *CALL_NAMES, "content_input", "content_output", "content_metadata"),
                               (position, *row), strict=True))
            _update_call(call, columns, using=using)
            _upsert_content(call, columns, using=using)
            touched_traces.add(call.trace_id)
            result.applied.append(position)
        if touched_traces:
            with connections[using].cursor() as cursor:
                cursor.execute(_RECOMPUTE_TRACES, [project.pk, sorted(touched_traces), project.pk])
    return result


class PatchInvalid(ValueError):
    """Applying the patch would store a call that cannot be true (it ends before it starts)."""


def call_patched(record: CallRecord, patch: CallPatch) -> CallRecord:
    """`record` with the patch applied; what the patch changes, derived values follow (latency
    from a new end, totals from new tokens, cost from new usage unless the client set it)."""
    changes = {
        name: value
        for name, value in msgspec.structs.asdict(patch).items()
        if value is not None and name not in ("trace_id", "span_id", "metadata", "first_token_at")
    }
    if patch.metadata:
        changes["metadata"] = {**record.metadata, **patch.metadata}
    if patch.first_token_at is not None and patch.time_to_first_token_ms is None:
        waited = (patch.first_token_at - record.start_time).total_seconds() * 1000
        if waited >= 0:
            changes["time_to_first_token_ms"] = waited
    if patch.end_time is not None and patch.latency_ms is None:
        changes["latency_ms"] = None
    if (patch.input_tokens is not None or patch.output_tokens is not None) and patch.total_tokens is None:
        changes["total_tokens"] = None
    if patch.input is not None:
        changes["input_hash"] = None  # hashed again from the new prompt
    patched = msgspec.structs.replace(record, **changes)
    if patched.end_time is not None and patched.end_time < patched.start_time:
        raise PatchInvalid("the end time would be before the start time")
    return patched


def _update_call(call: Call, columns: dict[str, Any], *, using: str) -> None:
    assignments = [name for name in CALL_NAMES if name not in ("project_id", "trace_id", "span_id", "start_time")]
    sql = "UPDATE calls_call SET {} WHERE id = %s AND start_time = %s".format(
        ", ".join(f"{name} = %s::jsonb" if name == "metadata" else f"{name} = %s" for name in assignments)
    )
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [*(columns[name] for name in assignments), call.id, call.start_time])
        cursor.execute(
            "INSERT INTO calls_changedminute (project_id, minute, marked_at) VALUES (%s, date_trunc('minute', %s), now())",
            [call.project_id, call.start_time],
        )


def _upsert_content(call: Call, columns: dict[str, Any], *, using: str) -> None:
    if columns["content_input"] is None and columns["content_output"] is None and columns["content_metadata"] is None:
        return
    with connections[using].cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO calls_callcontent (call_id, project_id, start_time, input, output, metadata)
            VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb)
            ON CONFLICT (call_id, start_time) DO UPDATE SET
                input = coalesce(EXCLUDED.input, calls_callcontent.input),
                output = coalesce(EXCLUDED.output, calls_callcontent.output),
                metadata = coalesce(EXCLUDED.metadata, calls_callcontent.metadata)
            """,
            [call.id, call.project_id, call.start_time, columns["content_input"], columns["content_output"],
             columns["content_metadata"]],
        )

