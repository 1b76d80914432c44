"""The Traces page: a filtered, keyset-paginated list of calls, and one trace in full."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from dashboards.charts import WaterfallRow, waterfall
from observatory.calls.models import MODEL_CALL_KINDS, Call, Score, Trace
from observatory.calls.selectors import CallFilters, Position, calls_list, trace_get
from observatory.metrics.selectors import metrics_query
from observatory.tenancy.models import Project

PAGE_SIZE = 50
# Model calls one page may read through when no index narrows the list (about twice as many
# rows: spans are as many again). Text in names, cost and latency ranges or a rare model are
# checked row by row, and a search that matches nothing would otherwise read the whole range.
SCAN_BUDGET = 150_000


@dataclass
class TraceList:
    calls: list[Call]
    next_position: Position | None
    traces: dict[str, Trace]  # the listed calls' traces by id, for their names and totals
    # Set when this page stopped reading at SCAN_BUDGET: calls before it are on later pages.
    searched_back_to: datetime | None = None


def _bounded(filters: CallFilters) -> bool:
    """Whether the list must read under a scan budget: a filter may match few calls, and no
    index walks only the matching ones (the indexes of migration 0008 do for a trace, a user,
    a session and errors). Listing model calls, root spans or everything matches most calls."""
    if filters.trace_id or filters.user_id or filters.session_id or filters.status == "error":
        return False
    dense = {"start", "end", "roots_only", "kinds"}
    if filters.kinds is not None and set(filters.kinds) != MODEL_CALL_KINDS:
        return True
    return any(getattr(filters, name) is not None for name in CallFilters.__dataclass_fields__ if name not in dense)


def _scan_floor(*, project: Project, start: datetime, end: datetime) -> datetime:
    """The latest start time such that [floor, end) holds about SCAN_BUDGET model calls, whole
    hours back from `end`, counted from the hourly rollups; `start` when the range holds fewer."""
    rows = metrics_query(project=project, start=start, end=end, metrics=["count"], interval="hour").rows
    seen = 0
    for row in sorted(rows, key=lambda row: row["bucket"], reverse=True):
        seen += row["count"]
        if seen > SCAN_BUDGET:
            return max(start, min(end, row["bucket"]))
    return start


def trace_list_get(*, project: Project, filters: CallFilters, after: Position | None,
                   limit: int = PAGE_SIZE) -> TraceList:
    """A page of calls. Unless an index narrows the filters, a page reads calls back to where
    the scan budget runs out; if that leaves it short, it continues from there on the next page,
    so every request does bounded work and no call is skipped."""
    floor = None
    if filters.start is not None and filters.end is not None and _bounded(filters):
        floor = _scan_floor(project=project, start=filters.start, end=after.start_time if after else filters.end)
    searched_back_to = None
    if floor is not None and floor > filters.start:
        calls, position = calls_list(project=project, filters=replace(filters, start=floor), after=after, limit=limit)
        if position is None:  # this stretch is done; the range goes further back
            position, searched_back_to = Position(start_time=floor, id=0), floor
    else:
        calls, position = calls_list(project=project, filters=filters, after=after, limit=limit)
    trace_ids = {call.trace_id for call in calls}
    traces = {trace.trace_id: trace for trace in Trace.objects.filter(project=project, trace_id__in=trace_ids)}
    return TraceList(calls=calls, next_position=position, traces=traces, searched_back_to=searched_back_to)


@dataclass
class SpanView:
    row: WaterfallRow
    input: Any = None
    output: Any = None
    large_metadata: Any = None
    has_content: bool = False
    scores: list[Score] = field(default_factory=list)


@dataclass
class TraceView:
    trace: Trace
    spans: list[SpanView]
    trace_scores: list[Score]  # on the whole trace, not one call
    content_hidden: bool
    models: list[str]


def trace_view_get(*, project: Project, trace_id: str, with_content: bool) -> TraceView | None:
    """The trace with its spans in waterfall order; content (prompts, completions, large
    metadata, the trace's own input and output) only `with_content`."""
    detail = trace_get(project=project, trace_id=trace_id, with_content=with_content)
    if detail is None:
        return None
    if not with_content:
        # Withheld here, not only in the template: what is not loaded cannot be shown by mistake.
        detail.trace.input = detail.trace.output = detail.trace.metadata = None
        for score in detail.scores:
            score.comment = None
    by_span: dict[str, list[Score]] = {}
    trace_scores = []
    for score in detail.scores:
        (by_span.setdefault(score.span_id, []) if score.span_id else trace_scores).append(score)
    spans = []
    for row in waterfall(detail.calls):
        content = detail.content.get(row.call.id)
        spans.append(SpanView(
            row=row, scores=by_span.get(row.call.span_id, []),
            input=content.input if content else None, output=content.output if content else None,
            large_metadata=content.metadata if content else None,
            has_content=bool(content and (content.input is not None or content.output is not None)),
        ))
    return TraceView(trace=detail.trace, spans=spans, trace_scores=trace_scores, content_hidden=not with_content,
                     models=sorted({call.model for call in detail.calls if call.model}))
