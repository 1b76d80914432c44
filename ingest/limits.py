"""Size and depth limits every way in applies the same way, so that a client learns one rule.

Identifiers and labels over their limit are refused by each way in (cutting them would merge
distinct values); free texts and content are cut here, and the field is named in `truncated`
so the event can say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from django.conf import settings

MAX_METADATA_DEPTH = 10
MAX_CONTENT_DEPTH = 64
MAX_CONTENT_STRING = 256 * 1024


@dataclass
class IngestWindow:
    """The start times ingest accepts, fixed once per request."""

    oldest: datetime
    newest: datetime
    max_past_days: int
    max_future_minutes: int

    @classmethod
    def now(cls) -> IngestWindow:
        now = datetime.now(UTC)
        past_days = min(settings.RETENTION_DAYS, settings.INGEST_MAX_PAST_DAYS)
        future = settings.INGEST_MAX_FUTURE_MINUTES
        return cls(now - timedelta(days=past_days), now + timedelta(minutes=future), past_days, future)


class TooDeep(ValueError):
    """A JSON value nested deeper than its limit."""


_encoder = msgspec.json.Encoder()


def shape(value: Any, limit: int) -> tuple[bool, bool]:
    """(whether a JSON value is nested deeper than `limit`, whether any of its strings is over
    MAX_CONTENT_STRING)."""
    if isinstance(value, str):
        return False, len(value) > MAX_CONTENT_STRING
    if not isinstance(value, dict | list):
        return False, False
    # Screened in C first, which spares most values the walk in Python: JSON text no longer
    # than the string limit holds no longer string, and a value is nested no deeper than its
    # text has brackets.
    try:
        text = _encoder.encode(value)
    except (TypeError, ValueError, RecursionError):
        pass  # not plain JSON (or absurdly deep): the walk tells
    else:
        if len(text) <= MAX_CONTENT_STRING and text.count(b"[") + text.count(b"{") <= limit:
            return False, False
    return _walk(value, limit)


def _walk(value: dict | list, limit: int) -> tuple[bool, bool]:
    deepest, long_string = 0, False
    stack = [(value, 1)]  # only containers: strings are checked where they are found
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, str):
                long_string = long_string or len(child) > MAX_CONTENT_STRING
            elif isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return deepest > limit, long_string


def truncate(value: str | None, limit: int, field_name: str, truncated: list[str]) -> str | None:
    if value is None or len(value) <= limit:
        return value
    truncated.append(field_name)
    return value[:limit]


def bounded_content(value: Any, field_name: str, truncated: list[str]) -> Any:
    """Content as sent, with over-long strings cut; TooDeep when nested absurdly deep."""
    if value is None or isinstance(value, (int, float, bool)):
        return value
    if isinstance(value, str):
        return _cut(value, field_name, truncated)
    too_deep, long_string = shape(value, MAX_CONTENT_DEPTH)
    if too_deep:
        raise TooDeep(f"is nested deeper than {MAX_CONTENT_DEPTH} levels")
    return _cut_strings(value, field_name, truncated) if long_string else value


def _cut(text: str, field_name: str, truncated: list[str]) -> str:
    if len(text) <= MAX_CONTENT_STRING:
        return text
    if field_name not in truncated:
        truncated.append(field_name)
    return text[:MAX_CONTENT_STRING] + f"… [truncated {len(text) - MAX_CONTENT_STRING} characters]"


def _cut_strings(value: Any, field_name: str, truncated: list[str]) -> Any:
    if isinstance(value, str):
        return _cut(value, field_name, truncated)
    if isinstance(value, dict):
        return {key: _cut_strings(item, field_name, truncated) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut_strings(item, field_name, truncated) for item in value]
    return value

