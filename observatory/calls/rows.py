"""From CallRecords to the rows the write path stores: priced, redacted and encoded.

A row is the call table's columns (CALL_COLUMNS, in that order) followed by the content
table's (CONTENT_COLUMNS): prompt, completion and large metadata, as JSON text, the shape
observatory.calls.statement_insert stores (and bench/ingest.py's raw COPY ceiling reuses).
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
from django.conf import settings

from observatory.calls.models import MODEL_CALL_KINDS, CostSource
from observatory.calls.records import MAX_INLINE_METADATA_BYTES, CallRecord
from observatory.calls.redaction import mask_value, may_hold_a_finding
from observatory.pricing.services import COST_QUANTUM, PriceBook
from observatory.pricing.usage import TokenUsage
from observatory.tenancy.models import Project, RedactionMode

# (column, its type). The JSON columns are JSON text: the database parses them once.
CALL_COLUMNS: tuple[tuple[str, str], ...] = (
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
CONTENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("content_input", "text"),
    ("content_output", "text"),
    ("content_metadata", "text"),
)
CALL_NAMES = [name for name, _ in CALL_COLUMNS]

# jsonb refuses the NUL character; an escaped backslash before "u0000" is left alone.
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
_json_encoder = msgspec.json.Encoder(decimal_format="number")


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
    RowBuilder.json_columns, on its JSON text): kept in every redaction mode, masked unless
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
    """Turns records into rows for one project: prices, redacts, encodes."""

    def __init__(self, project: Project) -> None:
        self.project_id = project.pk
        self.redaction = project.redaction_mode
        self.prices = PriceBook(project=project)
        self.hash_key = input_hash_key()

    def json_columns(self, prompt: Any, completion: Any, metadata: dict[str, Any] | None
                     ) -> tuple[str | None, str | None, str | None, str | None]:
        """(the prompt as sent, then the prompt, completion and metadata as the project's redaction
        mode stores them), as JSON text, None for nothing to store. Prompt and completion are
        dropped in DROP mode; metadata is kept in every mode (see kept_masked); what is kept is
        masked unless the project stores content as sent.

        The texts are screened for findings at once, one screen of their concatenation instead
        of three on every call ingested: a finding in any of them (or a false one across a
        boundary) sends each through its own screen."""
        values = (prompt, completion, metadata)
        sent = [None if prompt is None else json_text(prompt), None if completion is None else json_text(completion),
                json_text(metadata) if metadata else None]
        kept = list(sent)
        if self.redaction == RedactionMode.DROP:
            kept[0] = kept[1] = None
        if self.redaction != RedactionMode.STORE and may_hold_a_finding("".join(text for text in kept if text)):
            kept = [None if text is None else _masked_json(value, text) for value, text in zip(values, kept, strict=True)]
        return sent[0], kept[0], kept[1], kept[2]

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

        sent_input, input_json, output_json, metadata_json = self.json_columns(record.input, record.output,
                                                                               record.metadata)
        hashed = record.input_hash
        if hashed is None and sent_input is not None and record.kind in MODEL_CALL_KINDS:
            # The prompt as sent, whatever redaction stores: masking must not hide a loop.
            hashed = input_hash(sent_input, key=self.hash_key)
        metadata_json = metadata_json or "{}"
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


