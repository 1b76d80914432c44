"""Event payloads: identifiers, timestamps, and turning application objects into JSON.

An event is snapshotted into plain JSON values when it is recorded, on the caller's
thread: the application may mutate its message list right after the call, and the
background thread must never run the application's code (a pydantic model's serializer,
a custom __str__) at an unpredictable time.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
from collections.abc import Mapping
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

# Deep enough for any chat transcript with tool calls; a cycle or a pathological object
# graph stops here instead of recursing until the interpreter gives up.
MAX_DEPTH = 32


def new_trace_id() -> str:
    """32 hex characters, the W3C/OpenTelemetry trace id format, so ids can be shared."""
    return os.urandom(16).hex()


def new_span_id() -> str:
    """16 hex characters, the W3C/OpenTelemetry span id format."""
    return os.urandom(8).hex()


def iso_timestamp(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).isoformat(timespec="microseconds")


def timestamp_jsonable(value: Any) -> Any:
    """A start/end time as the server accepts it: ISO 8601 text or an epoch number."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.astimezone()  # naive means local time in Python, not UTC
        return value.isoformat(timespec="microseconds")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return iso_timestamp(value)
    return value


def to_jsonable(value: Any, depth: int = 0) -> Any:
    """A copy of `value` made only of dict, list, str, int, float, bool and None."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # JSON has no NaN or Infinity
    if depth >= MAX_DEPTH:
        return "[nested too deeply]"
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(item, depth + 1) for item in value]
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, depth + 1)
    if isinstance(value, (bytes, bytearray)):
        return f"[{len(value)} bytes]"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value), depth + 1)
    dumped = _model_dump(value)
    if dumped is not None:
        return to_jsonable(dumped, depth + 1)
    return _text_of(value)


def _model_dump(value: Any) -> Any:
    """A pydantic model (what the OpenAI and Anthropic clients return) as a dict, or None."""
    dump = getattr(value, "model_dump", None)
    if not callable(dump):
        return None
    try:
        return dump(mode="json", exclude_none=True)
    except Exception:
        return None


def _text_of(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"[unprintable {type(value).__name__}]"


def event_encode(payload: dict[str, Any]) -> bytes:
    """One event as compact UTF-8 JSON (the payload is already made of JSON values)."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # A lone surrogate (from a broken decode upstream) is not encodable as UTF-8; the server
    # would refuse the whole request as invalid UTF-8, so it is replaced instead.
    return text.encode("utf-8", "replace")


def batch_body(encoded_events: list[bytes]) -> bytes:
    return b'{"events":[' + b",".join(encoded_events) + b"]}"
