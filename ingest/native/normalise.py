"""From a decoded native event to a CallRecord, or to the list of what is wrong with it.

Rules a client may need to know (also in the README):
- identifiers and labels longer than their limit are rejected (truncating would merge
  distinct values); `name`, `error_message` and strings inside input/output over their limits
  are truncated and the event carries a `truncated` warning and metadata flag;
- unknown top-level fields are kept in `metadata` with a warning;
- `id` is the span id when `span_id` is absent, and the trace id when `trace_id` is absent, so a
  retried event maps to the same call; without either a random id is generated (and a retry
  would be stored twice);
- a timestamp without an offset is UTC; epochs are told apart by magnitude.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from ingest.limits import MAX_METADATA_DEPTH, IngestWindow, TooDeep, bounded_content, shape, truncate
from ingest.native.schema import KNOWN_FIELDS, NativeEvent
from observatory.calls.models import CallKind
from observatory.calls.records import (
    CACHE_KINDS,
    CONTENT_FILTER_OUTCOMES,
    MAX_ERROR_MESSAGE_LENGTH,
    MAX_NAME_LENGTH,
    CallRecord,
    cost_problem,
)

ENUM_FIELDS = {"kind": list(CallKind.values), "status": ["ok", "error"], "cache_kind": list(CACHE_KINDS),
               "content_filter": list(CONTENT_FILTER_OUTCOMES)}
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


class EventOutcome(msgspec.Struct):
    """A Struct rather than a dataclass: one is made per event, and msgspec's constructor is
    several times cheaper (each empty list default is a fresh list, as default_factory gives)."""

    record: CallRecord | None = None
    errors: list[dict[str, str]] = []
    warnings: list[str] = []

    def reject(self, field_name: str, message: str) -> None:
        self.errors.append({"field": field_name, "message": message})


def event_normalise(raw: Any, *, window: IngestWindow) -> EventOutcome:
    outcome = EventOutcome()
    if not isinstance(raw, dict):
        outcome.reject("event", f"must be a JSON object, not {type(raw).__name__}")
        return outcome
    try:
        event = msgspec.convert(raw, NativeEvent)
    except msgspec.ValidationError as error:
        outcome.reject(*_split_validation_error(str(error)))
        return outcome

    start, end = _timestamps(event, outcome, window)
    _check_numbers(event, outcome)
    if event.id and event.span_id and event.id != event.span_id:
        outcome.reject("id", "differs from span_id: send one of them (id is the span id)")
    if outcome.errors:
        return outcome

    truncated: list[str] = []
    name = truncate(event.name, MAX_NAME_LENGTH, "name", truncated)
    error_message = truncate(event.error_message, MAX_ERROR_MESSAGE_LENGTH, "error_message", truncated)
    content = {}
    for field_name in ("input", "output"):
        try:
            content[field_name] = bounded_content(getattr(event, field_name), field_name, truncated)
        except TooDeep as problem:
            outcome.reject(field_name, str(problem))
    if outcome.errors:
        return outcome

    metadata = event.metadata
    unknown = sorted(set(raw) - KNOWN_FIELDS)
    if unknown:
        metadata = dict(metadata)
        for key in unknown:
            metadata.setdefault(key, raw[key])
        outcome.warnings.append(f"unknown fields kept in metadata: {', '.join(unknown)}")
    if metadata and shape(metadata, MAX_METADATA_DEPTH)[0]:
        outcome.reject("metadata", f"is nested deeper than {MAX_METADATA_DEPTH} levels")
    if outcome.errors:
        return outcome
    if truncated:
        metadata["_truncated"] = truncated
        outcome.warnings.append(f"truncated: {', '.join(truncated)}")

    span_id = event.span_id or event.id
    trace_id = event.trace_id or event.id
    if span_id is None:
        span_id = uuid.uuid4().hex[:16]
    if trace_id is None:
        trace_id = uuid.uuid4().hex
    status = event.status or ("error" if event.error_type or event.error_message else "ok")
    outcome.record = CallRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=event.parent_span_id,
        name=name,
        kind=event.kind,
        start_time=start,
        end_time=end,
        latency_ms=event.latency_ms,
        time_to_first_token_ms=event.time_to_first_token_ms,
        provider=event.provider,
        model=event.model,
        input_tokens=event.input_tokens,
        cached_input_tokens=event.cached_input_tokens,
        cache_write_tokens=event.cache_write_tokens,
        output_tokens=event.output_tokens,
        reasoning_tokens=event.reasoning_tokens,
        total_tokens=event.total_tokens,
        cost=event.cost,
        finish_reason=event.finish_reason,
        status=status,
        error_type=event.error_type,
        error_message=error_message,
        user_id=event.user_id,
        session_id=event.session_id,
        environment=event.environment,
        release=event.release,
        feature=event.feature,
        prompt_name=event.prompt_name,
        prompt_version=None if event.prompt_version is None else str(event.prompt_version),
        tags=list(dict.fromkeys(event.tags)),
        metadata=metadata,
        input=content["input"],
        output=content["output"],
        cache_hit=event.cache_hit,
        cache_kind=event.cache_kind,
        cache_saved_cost=event.cache_saved_cost,
        attempt=event.attempt,
        retry_of=event.retry_of,
        fallback_from_provider=event.fallback_from_provider,
        fallback_from_model=event.fallback_from_model,
        http_status=event.http_status,
        timeout_ms=event.timeout_ms,
        max_tokens=event.max_tokens,
        streamed=event.streamed,
        content_filter=event.content_filter,
    )
    return outcome


def _split_validation_error(message: str) -> tuple[str, str]:
    """msgspec says "Expected `int` >= 0 - at `$.input_tokens`": name the field first."""
    match = _PATH.search(message)
    if not match:
        return "event", message
    field_name, detail = match.group(1) or "event", message[: match.start()]
    if detail.startswith("Invalid enum value") and field_name in ENUM_FIELDS:
        detail += f" (one of: {', '.join(ENUM_FIELDS[field_name])})"
    return field_name, detail


def epoch_to_datetime(value: float) -> datetime:
    magnitude = abs(value)
    if magnitude < 1e11:
        seconds = value
    elif magnitude < 1e14:
        seconds = value / 1e3
    elif magnitude < 1e17:
        seconds = value / 1e6
    else:
        seconds = value / 1e9
    return datetime.fromtimestamp(seconds, UTC)


def _as_datetime(value: datetime | float | None, field_name: str, outcome: EventOutcome) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        return epoch_to_datetime(value)
    except (OverflowError, OSError, ValueError):
        outcome.reject(field_name, f"{value} is not a usable Unix timestamp")
        return None


def _timestamps(event: NativeEvent, outcome: EventOutcome, window: IngestWindow) -> tuple[datetime, datetime | None]:
    start = _as_datetime(event.start_time, "start_time", outcome)
    end = _as_datetime(event.end_time, "end_time", outcome)
    if outcome.errors:
        return start, end
    if start is None:
        if end is None:
            outcome.reject("start_time", "required (or end_time, with latency_ms when known)")
            return start, end
        start = end - timedelta(milliseconds=event.latency_ms or 0)
    if start < window.oldest:
        outcome.reject("start_time", f"{start.isoformat()} is older than the {window.max_past_days}-day ingest window")
    elif start > window.newest:
        outcome.reject(
            "start_time", f"{start.isoformat()} is more than {window.max_future_minutes} minutes in the future"
        )
    if end is not None and end < start:
        outcome.reject("end_time", f"{end.isoformat()} is before start_time {start.isoformat()}")
    return start, end


def _check_numbers(event: NativeEvent, outcome: EventOutcome) -> None:
    for name in ("cost", "cache_saved_cost"):
        amount = getattr(event, name)
        if amount is not None and (problem := cost_problem(amount)):
            outcome.reject(name, problem)
    for name, value in (("latency_ms", event.latency_ms), ("time_to_first_token_ms", event.time_to_first_token_ms),
                        ("timeout_ms", event.timeout_ms)):
        if value is not None and not math.isfinite(value):
            outcome.reject(name, "must be a finite number")
    if event.cached_input_tokens + event.cache_write_tokens > event.input_tokens:
        outcome.reject(
            "cached_input_tokens",
            "cached_input_tokens + cache_write_tokens exceed input_tokens (input_tokens counts cached tokens too)",
        )
    _check_signals(event, outcome)
    if event.reasoning_tokens > event.output_tokens:
        outcome.reject("reasoning_tokens", "exceed output_tokens (output_tokens counts reasoning tokens too)")
    if (
        event.time_to_first_token_ms is not None
        and event.latency_ms is not None
        and event.time_to_first_token_ms > event.latency_ms
    ):
        outcome.reject("time_to_first_token_ms", "is greater than latency_ms")


def _check_signals(event: NativeEvent, outcome: EventOutcome) -> None:
    """Signals that contradict each other or the call."""
    if event.cache_hit is False and event.cache_kind is not None:
        outcome.reject("cache_kind", "is given but cache_hit is false")
    if event.cache_saved_cost is not None and event.cache_hit is not True and event.cache_kind is None:
        outcome.reject("cache_saved_cost", "is only meaningful for a cache hit (set cache_hit)")
    if event.retry_of is not None:
        if event.retry_of == (event.span_id or event.id):
            outcome.reject("retry_of", "names the call itself")
        if event.attempt == 1:
            outcome.reject("attempt", "is 1 (the first try) but retry_of says this call is a retry")
    if (
        event.fallback_from_model is not None
        and event.fallback_from_model == event.model
        and event.fallback_from_provider == event.provider
    ):
        outcome.reject("fallback_from_model", "is the call's own model and provider: a fallback goes elsewhere")
