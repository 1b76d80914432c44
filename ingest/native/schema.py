"""The native event: one LLM call or span as an application sends it to POST /api/v1/events.

msgspec validates types and bounds in C and generates the JSON Schema published in the
OpenAPI document, so the documentation cannot drift from what is accepted.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from observatory.calls.models import CallKind
from observatory.calls.records import (
    CACHE_KINDS,
    CONTENT_FILTER_OUTCOMES,
    MAX_ATTEMPT,
    MAX_ID_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_TAGS,
    MAX_TOKENS,
)

MAX_EVENTS_PER_REQUEST = 10_000
MAX_LATENCY_MS = 7 * 24 * 3600 * 1000  # a week: anything longer is a clock bug, not a call
MAX_TAG_LENGTH = 200

Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Label = Annotated[str, Meta(max_length=MAX_LABEL_LENGTH)]
Tokens = Annotated[int, Meta(ge=0, le=MAX_TOKENS)]
Millis = Annotated[float, Meta(ge=0, le=MAX_LATENCY_MS)]
Timestamp = Annotated[
    datetime | Annotated[float, Meta(ge=0)],
    Meta(
        description="ISO 8601 / RFC 3339 (UTC when no offset is given), or a Unix epoch in seconds, "
        "milliseconds, microseconds or nanoseconds (told apart by magnitude)."
    ),
]
Kind = Literal[tuple(CallKind.values)]  # type: ignore[valid-type]
CacheKind = Literal[CACHE_KINDS]  # type: ignore[valid-type]
ContentFilter = Literal[CONTENT_FILTER_OUTCOMES]  # type: ignore[valid-type]


class NativeEvent(msgspec.Struct, kw_only=True):
    """One call or span. Only a timestamp is required; everything else has a sensible default.

    Fields not listed here are kept in `metadata` (and reported as a warning).
    """

    id: Annotated[Id, Meta(description="Idempotency key; the span id when span_id is absent.")] | None = None
    trace_id: Annotated[Id, Meta(description="Generated when absent (from id, if given).")] | None = None
    span_id: Id | None = None
    parent_span_id: Id | None = None
    name: Annotated[str, Meta(description="Longer than 1000 characters: truncated.")] = ""
    kind: Kind = "generation"
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    latency_ms: Millis | None = None
    time_to_first_token_ms: Millis | None = None
    provider: Label | None = None
    model: Label | None = None
    input_tokens: Annotated[Tokens, Meta(description="All prompt tokens, cached ones included.")] = 0
    cached_input_tokens: Tokens = 0
    cache_write_tokens: Tokens = 0
    output_tokens: Annotated[Tokens, Meta(description="All completion tokens, reasoning included.")] = 0
    reasoning_tokens: Tokens = 0
    total_tokens: Tokens | None = None
    cost: Annotated[Decimal, Meta(description="USD. Wins over any computed price.")] | None = None
    finish_reason: Label | None = None
    status: Literal["ok", "error"] | None = None
    error_type: Label | None = None
    error_message: Annotated[str, Meta(description="Longer than 4000 characters: truncated.")] | None = None
    user_id: Label | None = None
    session_id: Label | None = None
    environment: Label | None = None
    release: Label | None = None
    feature: Label | None = None
    prompt_name: Label | None = None
    prompt_version: Label | int | None = None
    tags: Annotated[list[Annotated[str, Meta(max_length=MAX_TAG_LENGTH)]], Meta(max_length=MAX_TAGS)] = []
    metadata: Annotated[dict[str, Any], Meta(description="At most 10 levels deep.")] = {}
    input: Annotated[Any, Meta(description="Prompt: text or messages.")] = None
    output: Annotated[Any, Meta(description="Completion: text or messages.")] = None
    # Signals from the safety nets around the call, as a gateway or client knows them.
    cache_hit: Annotated[bool, Meta(description="Answered from a response cache, not the provider.")] | None = None
    cache_kind: Annotated[CacheKind, Meta(description="Implies cache_hit.")] | None = None
    cache_saved_cost: Annotated[
        Decimal, Meta(description="USD a cache hit saved; priced like the call when absent.")
    ] | None = None
    attempt: Annotated[int, Meta(ge=1, le=MAX_ATTEMPT, description="1 for the first try.")] | None = None
    retry_of: Annotated[Id, Meta(description="span_id of the attempt this call retries.")] | None = None
    fallback_from_provider: Annotated[Label, Meta(description="Provider that failed before this call.")] | None = None
    fallback_from_model: Annotated[Label, Meta(description="Model that failed before this call.")] | None = None
    http_status: Annotated[int, Meta(ge=100, le=599, description="The provider's HTTP status.")] | None = None
    timeout_ms: Annotated[Millis, Meta(description="The timeout configured for the call.")] | None = None
    max_tokens: Annotated[int, Meta(ge=1, le=MAX_TOKENS, description="The completion limit requested.")] | None = None
    streamed: bool | None = None
    content_filter: Annotated[
        ContentFilter, Meta(description="finish_reason content_filter implies output_flagged.")
    ] | None = None


KNOWN_FIELDS = frozenset(NativeEvent.__struct_fields__)


class NativeBatch(msgspec.Struct):
    events: Annotated[list[NativeEvent], Meta(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)]


def openapi_components() -> tuple[dict, dict]:
    """(request body schema, component schemas) for the OpenAPI document."""
    (event, batch), components = msgspec.json.schema_components(
        [NativeEvent, NativeBatch], ref_template="#/components/schemas/{name}"
    )
    return {"oneOf": [event, batch]}, components
