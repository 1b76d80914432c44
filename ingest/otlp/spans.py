"""One OTLP span as a CallRecord (and, for Langfuse spans, what it says about its trace).

Every span becomes a row, so a trace's waterfall is complete; spans that are LLM calls carry
their tokens, cost, model, finish reason, time to first token and error. A span is refused only
when it cannot be stored truthfully: ids missing or malformed, or times absent, absurd, or
backwards. Anything else odd is kept and reported as a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.limits import MAX_METADATA_DEPTH, TooDeep, bounded_content, shape, truncate
from ingest.limits import IngestWindow
from ingest.otlp.attributes import Attributes, attributes_dict, parse_json_text
from ingest.otlp.decode import hex_id
from ingest.otlp import dialects
from observatory.calls.records import (
    MAX_ERROR_MESSAGE_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TAGS,
    CallRecord,
    TraceAnnotation,
)

STATUS_CODE_ERROR = 2
_CLASS_REPR = re.compile(r"^<class '([^']+)'>$")


@dataclass
class SpanOutcome:
    record: CallRecord | None = None
    annotation: TraceAnnotation | None = None
    refusal: str | None = None
    warnings: list[str] = field(default_factory=list)


def _nanos(value: int) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(value / 1e9, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _valid_id(raw: bytes, size: int) -> bool:
    return len(raw) == size and any(raw)


def span_map(span, *, resource: dict[str, Any], scope_name: str, window: IngestWindow) -> SpanOutcome:
    outcome = SpanOutcome()
    if not _valid_id(span.trace_id, 16) or not _valid_id(span.span_id, 8):
        outcome.refusal = "trace_id must be 16 bytes and span_id 8 bytes, not all zero"
        return outcome
    if span.parent_span_id and not _valid_id(span.parent_span_id, 8):
        outcome.refusal = "parent_span_id must be empty or 8 bytes"
        return outcome
    start, end = _nanos(span.start_time_unix_nano), _nanos(span.end_time_unix_nano)
    if start is None:
        outcome.refusal = "start_time_unix_nano is missing or not a usable time"
    elif start < window.oldest:
        outcome.refusal = f"starts at {start.isoformat()}, before the {window.max_past_days}-day ingest window"
    elif start > window.newest:
        outcome.refusal = f"starts at {start.isoformat()}, more than {window.max_future_minutes} minutes in the future"
    elif end is not None and end < start:
        outcome.refusal = "end_time_unix_nano is before start_time_unix_nano"
    if outcome.refusal:
        return outcome

    warnings = outcome.warnings
    attrs = Attributes(attributes_dict(span.attributes), warnings)
    events = [(event.name, attributes_dict(event.attributes), event.time_unix_nano) for event in span.events]
    resource_attrs = Attributes(resource, [])

    kind = dialects.kind_of(attrs)
    provider, model = dialects.provider_and_model(attrs)
    usage = dialects.usage_of(attrs)
    cost = dialects.cost_of(attrs)
    prompt, completion = dialects.content_of(attrs, events)
    status, error_type, error_message = _error_of(span, attrs, events)
    latency_ms = (end - start).total_seconds() * 1000 if end else None
    ttft = _time_to_first_token(attrs, events, start, latency_ms)

    truncated: list[str] = []
    content = {}
    for name, value in (("input", prompt), ("output", completion)):
        try:
            content[name] = bounded_content(value, name, truncated)
        except TooDeep as problem:
            warnings.append(f"{name} {problem}; not stored")
            content[name] = None

    labels = {
        "provider": provider,
        "model": model,
        "finish_reason": dialects.finish_reason_of(attrs) or dialects.finish_reason_in(completion),
        "error_type": error_type,
        "user_id": attrs.text("langfuse.user.id", "user.id", "enduser.id"),
        "session_id": attrs.text("langfuse.session.id", "session.id", "gen_ai.conversation.id"),
        "environment": attrs.text("langfuse.environment", "deployment.environment.name", "deployment.environment")
        or resource_attrs.text("langfuse.environment", "deployment.environment.name", "deployment.environment"),
        "release": attrs.text("langfuse.release") or resource_attrs.text("langfuse.release", "service.version"),
        "feature": attrs.text("observatory.feature", "app.feature", "feature"),
        "prompt_name": attrs.text("langfuse.observation.prompt.name", "langfuse.prompt.name", "gen_ai.prompt.name",
                                  "llm.prompt_template.name"),
        "prompt_version": attrs.text("langfuse.observation.prompt.version", "langfuse.prompt.version",
                                     "gen_ai.prompt.version", "llm.prompt_template.version"),
    }
    for name, value in labels.items():
        # Exporters cannot fix what they send, so an over-long label is cut rather than refused.
        if value is not None and len(value) > MAX_LABEL_LENGTH:
            truncated.append(name)
            labels[name] = value[:MAX_LABEL_LENGTH]
    span_name = truncate(span.name, MAX_NAME_LENGTH, "name", truncated) or ""
    error_message = truncate(error_message, MAX_ERROR_MESSAGE_LENGTH, "error_message", truncated)
    tags = [tag[:200] for tag in attrs.strings("langfuse.trace.tags", "tag.tags", "langfuse.tags")[:MAX_TAGS]]
    signals = dialects.signals_of(attrs, span_id=hex_id(span.span_id), provider=labels["provider"],
                                  model=labels["model"])
    # Last: whatever no dialect claimed is kept in metadata.
    metadata = _metadata_of(attrs, scope_name, resource)
    if truncated:
        metadata["_truncated"] = truncated
        warnings.append(f"truncated: {', '.join(truncated)}")

    trace_id, span_id = hex_id(span.trace_id), hex_id(span.span_id)
    outcome.record = CallRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=hex_id(span.parent_span_id) if span.parent_span_id else None,
        name=span_name,
        kind=kind,
        start_time=start,
        end_time=end,
        latency_ms=latency_ms,
        time_to_first_token_ms=ttft,
        **usage.record_fields(),
        cost=cost,
        status=status,
        error_message=error_message,
        tags=tags,
        metadata=metadata,
        input=content["input"],
        output=content["output"],
        **labels,
        **signals,
    )
    outcome.annotation = _trace_annotation(attrs, outcome.record, tags)
    return outcome


def _error_of(span, attrs: Attributes, events) -> tuple[str, str | None, str | None]:
    level = (attrs.text("langfuse.observation.level") or "").upper()
    failed = span.status.code == STATUS_CODE_ERROR or level == "ERROR"
    exception = next((values for name, values, _ in events if name == "exception"), {})
    error_type = attrs.text("error.type") or exception.get("exception.type")
    if error_type:
        # Some instrumentations record str(type(error)): "<class 'openai.RateLimitError'>".
        error_type = _CLASS_REPR.sub(r"\1", error_type)
    message = attrs.text("langfuse.observation.status_message") or span.status.message or exception.get("exception.message")
    if not failed:
        # A status message on a successful span is context, not an error.
        return "ok", None, None
    return "error", error_type, message or None


def _time_to_first_token(attrs: Attributes, events, start: datetime, latency_ms: float | None) -> float | None:
    ttft = None
    started = attrs.document("langfuse.observation.completion_start_time")
    if isinstance(started, str):
        try:
            first = datetime.fromisoformat(started.replace("Z", "+00:00"))
            ttft = ((first if first.tzinfo else first.replace(tzinfo=UTC)) - start).total_seconds() * 1000
        except ValueError:
            attrs.warnings.append(f"langfuse.observation.completion_start_time is not a time ({started!r}); ignored")
    if ttft is None:
        seconds = attrs.number("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token")
        ttft = seconds * 1000 if seconds is not None else None
    if ttft is None:
        # Some instrumentations mark the first streamed token with a span event.
        moment = next((time for name, _, time in events
                       if time and ("first_token" in name.lower() or "first_chunk" in name.lower())), None)
        if moment:
            ttft = (moment / 1e9 - start.timestamp()) * 1000
    if ttft is None:
        return None
    if ttft < 0 or (latency_ms is not None and ttft > latency_ms + 1):
        attrs.warnings.append(f"time to first token ({ttft:.0f} ms) is outside the span; ignored")
        return None
    return ttft


def _metadata_of(attrs: Attributes, scope_name: str, resource: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for key in ("langfuse.observation.metadata", "metadata"):
        document = attrs.document(key)
        if isinstance(document, dict):
            metadata.update(document)
    metadata.update({key: parse_json_text(value) for key, value in attrs.prefixed("langfuse.observation.metadata.").items()})
    parameters = attrs.document("langfuse.observation.model.parameters", "llm.invocation_parameters")
    if not isinstance(parameters, dict):
        parameters = {key: value for key, value in attrs.prefixed("gen_ai.request.").items() if key != "model"}
    if parameters:
        metadata["model_parameters"] = parameters
    unread = {key: value for key, value in attrs.unread().items() if not key.startswith("langfuse.trace.")}
    if unread:
        metadata["attributes"] = unread
    if scope_name:
        metadata["otel.scope"] = scope_name
    if resource.get("service.name"):
        metadata["service.name"] = resource["service.name"]
    if shape(metadata, MAX_METADATA_DEPTH)[0]:
        attrs.warnings.append(f"metadata nested deeper than {MAX_METADATA_DEPTH} levels; flattened to text")
        metadata = {"attributes_json": str(metadata)}
    return metadata


def _trace_annotation(attrs: Attributes, record: CallRecord, tags: list[str]) -> TraceAnnotation | None:
    values = attrs.values
    if not any(key.startswith("langfuse.trace.") for key in values):
        return None
    metadata = attrs.document("langfuse.trace.metadata")
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    metadata.update({key[len("langfuse.trace.metadata."):]: parse_json_text(value)
                     for key, value in values.items() if key.startswith("langfuse.trace.metadata.")})
    name = values.get("langfuse.trace.name")
    return TraceAnnotation(
        trace_id=record.trace_id,
        timestamp=record.start_time,
        name=str(name)[:MAX_NAME_LENGTH] if name else None,
        user_id=record.user_id,
        session_id=record.session_id,
        environment=record.environment,
        release=record.release,
        tags=tags,
        input=parse_json_text(values.get("langfuse.trace.input")),
        output=parse_json_text(values.get("langfuse.trace.output")),
        metadata=metadata or None,
    )
