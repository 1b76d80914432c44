"""Helpers to build CallRecords in tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from observatory.calls.records import CallRecord

_ids = itertools.count(1)


def record(**fields) -> CallRecord:
    """A priced generation that started a minute ago, with any field overridden."""
    fields.setdefault("trace_id", f"trace-{next(_ids)}")
    fields.setdefault("span_id", f"span-{next(_ids)}")
    fields.setdefault("start_time", datetime.now(UTC) - timedelta(minutes=1))
    fields.setdefault("latency_ms", 850.0)
    fields.setdefault("provider", "openai")
    fields.setdefault("model", "gpt-4o-mini")
    fields.setdefault("input_tokens", 1000)
    fields.setdefault("output_tokens", 200)
    return CallRecord(**fields)
