"""Reads of the call store: filtered call lists with keyset pagination, and whole traces."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Q, QuerySet

from observatory.calls.models import Call, CallContent, Score, Trace
from observatory.tenancy.models import Project


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class CallFilters:
    start: datetime | None = None
    end: datetime | None = None
    trace_id: str | None = None
    model: str | None = None
    status: str | None = None
    finish_reason: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    feature: str | None = None
    provider: str | None = None
    environment: str | None = None
    cost_source: str | None = None
    error_type: str | None = None
    # None: every kind. A trace's root span (no parent) stands for the whole trace.
    kinds: tuple[str, ...] | None = None
    roots_only: bool | None = None
    # Case-insensitive substring of the call's name.
    name_contains: str | None = None
    cost_min: Decimal | None = None
    cost_max: Decimal | None = None
    latency_min_ms: float | None = None
    latency_max_ms: float | None = None


# Filters that are one column equal to one value.
_EQUALITY_FILTERS = ("trace_id", "model", "status", "finish_reason", "user_id", "session_id", "feature", "provider",
                     "environment", "cost_source", "error_type")
# Filter -> the lookup it applies, for the open-ended ones.
_LOOKUP_FILTERS = {
    "kinds": "kind__in",
    "name_contains": "name__icontains",
    "cost_min": "cost__gte",
    "cost_max": "cost__lte",
    "latency_min_ms": "latency_ms__gte",
    "latency_max_ms": "latency_ms__lte",
}


@dataclass(frozen=True)
class Position:
    """Where a page ends: newest first, so the next page is strictly older."""

    start_time: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.start_time.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            moment, _, identifier = raw.partition("|")
            start_time = datetime.fromisoformat(moment)
            if start_time.tzinfo is None:
                raise ValueError
            return cls(start_time=start_time, id=int(identifier))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidCursor("cursor: not a cursor this API returned") from None


def _filtered(*, project: Project, filters: CallFilters) -> QuerySet[Call]:
    queryset = Call.objects.filter(project=project)
    if filters.start is not None:
        queryset = queryset.filter(start_time__gte=filters.start)
    if filters.end is not None:
        queryset = queryset.filter(start_time__lt=filters.end)
    for name in _EQUALITY_FILTERS:
        value = getattr(filters, name)
        if value is not None:
            queryset = queryset.filter(**{name: value})
    for name, lookup in _LOOKUP_FILTERS.items():
        value = getattr(filters, name)
        if value is not None:
            queryset = queryset.filter(**{lookup: value})
    if filters.roots_only:
        queryset = queryset.filter(parent_span_id__isnull=True)
    return queryset


def calls_list(
    *, project: Project, filters: CallFilters, after: Position | None = None, limit: int = 50
) -> tuple[list[Call], Position | None]:
    """A page of calls, newest first, and the position to continue from (None at the end).

    Keyset pagination on (start_time, id) stays as fast on page 10,000 as on page 1: it walks
    the (project_id, start_time, id) index instead of counting skipped rows; a user, a session
    or errors are walked through their own partial indexes (migration 0008), so a rare value
    does not mean reading every call of the window.
    """
    queryset = _filtered(project=project, filters=filters)
    if after is not None:
        queryset = queryset.filter(
            Q(start_time__lt=after.start_time) | Q(start_time=after.start_time, id__lt=after.id)
        )
    page = list(queryset.order_by("-start_time", "-id")[: limit + 1])
    if len(page) <= limit:
        return page, None
    page = page[:limit]
    return page, Position(start_time=page[-1].start_time, id=page[-1].id)


@dataclass
class TraceDetail:
    trace: Trace
    calls: list[Call]
    content: dict[int, CallContent] = field(default_factory=dict)
    scores: list[Score] = field(default_factory=list)


def trace_get(*, project: Project, trace_id: str, with_content: bool) -> TraceDetail | None:
    trace = Trace.objects.filter(project=project, trace_id=trace_id).first()
    if trace is None:
        return None
    # The summary's time span bounds every call of the trace, so only its partitions are read.
    calls = list(
        Call.objects.filter(
            project=project, trace_id=trace_id, start_time__gte=trace.start_time, start_time__lte=trace.end_time
        ).order_by("start_time", "id")
    )
    content = {}
    if with_content and calls:
        content = {
            item.call_id: item
            for item in CallContent.objects.filter(
                project=project,
                call_id__in=[call.id for call in calls],
                start_time__gte=trace.start_time,
                start_time__lte=trace.end_time,
            )
        }
    scores = list(Score.objects.filter(project=project, trace_id=trace_id).order_by("timestamp", "id"))
    return TraceDetail(trace=trace, calls=calls, content=content, scores=scores)
