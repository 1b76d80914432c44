"""CallRecord: one call or span, normalised, as every way in hands it to the write path.

The native API, OTLP, the Langfuse endpoints and the demo generator each turn their input
into CallRecords; from there pricing, redaction and the durable write are shared. Values are
already validated and within the limits below when a CallRecord is built.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

# Limits shared by every way in (and documented in the README's ingest section).
MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 1000
MAX_LABEL_LENGTH = 256  # provider, model, user, session, feature, prompt name, ...
MAX_ERROR_MESSAGE_LENGTH = 4000
MAX_TAGS = 50
MAX_TOKENS = 100_000_000  # per call; more is a client bug, not a call
MAX_COST_USD = Decimal(100_000)  # per call
# Metadata larger than this (as JSON) is moved to the content table so call rows stay narrow.
MAX_INLINE_METADATA_BYTES = 2048
MAX_ATTEMPT = 100  # the hundredth try of one call is a bug in a retry loop already

# What a gateway or client says about the safety nets around a call (see CallRecord's signal
# fields). Values outside these lists are refused by the native API and ignored, with a
# warning, by the OpenTelemetry and Langfuse paths.
CACHE_KINDS = ("exact", "semantic")
CONTENT_FILTER_OUTCOMES = ("passed", "input_blocked", "output_flagged")


def cost_problem(amount: Decimal) -> str | None:
    """Why a cost sent by a client cannot be stored, or None. Every way in asks this, so an
    absurd figure is refused (or ignored) at the door instead of overflowing the cost column."""
    if not amount.is_finite():
        return "must be a finite number"
    if amount < 0:
        return "must not be negative"
    if amount > MAX_COST_USD:
        return f"{amount} USD for one call is not plausible (limit {MAX_COST_USD})"
    return None


class CallRecord(msgspec.Struct, kw_only=True):
    trace_id: str
    span_id: str
    start_time: datetime  # timezone-aware
    kind: str = "generation"
    parent_span_id: str | None = None
    name: str = ""
    end_time: datetime | None = None
    latency_ms: float | None = None
    time_to_first_token_ms: float | None = None
    provider: str | None = None
    model: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int | None = None  # None: input + output
    cost: Decimal | None = None  # sent by the client; wins over any computed price
    finish_reason: str | None = None
    status: str = "ok"
    error_type: str | None = None
    error_message: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    environment: str | None = None
    release: str | None = None
    feature: str | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    input: Any = None
    output: Any = None
    # Signals from the caches, retries, fallbacks, timeouts and filters around the call; None
    # when the client did not say. The write path derives what follows from the rest
    # (a cache kind means a hit, finish_reason=content_filter means a flagged output).
    cache_hit: bool | None = None
    cache_kind: str | None = None  # one of CACHE_KINDS
    # What a cache hit saved: what the call would have cost. Priced like the call when absent.
    cache_saved_cost: Decimal | None = None
    attempt: int | None = None  # 1 for the first try
    retry_of: str | None = None  # span id of the attempt this one retries
    fallback_from_provider: str | None = None
    fallback_from_model: str | None = None
    http_status: int | None = None  # the provider's answer (429, 5xx, ...)
    timeout_ms: float | None = None  # the timeout configured for the call
    max_tokens: int | None = None  # the completion limit requested
    streamed: bool | None = None
    content_filter: str | None = None  # one of CONTENT_FILTER_OUTCOMES
    # A keyed hash of the prompt, so repeated identical prompts are found without reading
    # content (which redaction may drop). Computed by the write path unless already known.
    input_hash: int | None = None


class TraceAnnotation(msgspec.Struct, kw_only=True):
    """What a client says about a whole trace (Langfuse's trace-create, langfuse.trace.*):
    None leaves a field as it is. An explicit name wins over the root span's name."""

    trace_id: str
    timestamp: datetime | None = None
    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    environment: str | None = None
    release: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    input: Any = None
    output: Any = None
    metadata: dict[str, Any] | None = None


class ScoreRecord(msgspec.Struct, kw_only=True):
    score_id: str
    name: str
    data_type: str  # a ScoreDataType value
    timestamp: datetime
    trace_id: str | None = None
    span_id: str | None = None
    session_id: str | None = None
    value: float | None = None
    string_value: str | None = None
    comment: str | None = None
    source: str = "api"


class CallPatch(msgspec.Struct, kw_only=True):
    """A later word about a stored call (Langfuse's span-update / generation-update): every
    field that is not None replaces the stored one; metadata is merged key by key."""

    trace_id: str
    span_id: str
    name: str | None = None
    kind: str | None = None
    end_time: datetime | None = None
    latency_ms: float | None = None
    time_to_first_token_ms: float | None = None
    # When the first token arrived; becomes time_to_first_token_ms against the stored start.
    first_token_at: datetime | None = None
    provider: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    cost: Decimal | None = None
    finish_reason: str | None = None
    status: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    environment: str | None = None
    release: str | None = None
    feature: str | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    parent_span_id: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    input: Any = None
    output: Any = None
    cache_hit: bool | None = None
    cache_kind: str | None = None
    cache_saved_cost: Decimal | None = None
    attempt: int | None = None
    retry_of: str | None = None
    fallback_from_provider: str | None = None
    fallback_from_model: str | None = None
    http_status: int | None = None
    timeout_ms: float | None = None
    max_tokens: int | None = None
    streamed: bool | None = None
    content_filter: str | None = None
