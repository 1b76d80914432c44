"""Ingest a native request: validate every event, store the valid ones, report on each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingest.http import IngestError
from ingest.group_commit import group_commit
from ingest.limits import IngestWindow
from ingest.native.normalise import event_normalise
from ingest.native.schema import MAX_EVENTS_PER_REQUEST

from observatory.tenancy.models import ApiKey, Project


@dataclass
class IngestReport:
    status: int
    body: dict[str, Any]
    # Nothing was stored: the unproven key, or its project, is not what it was (see
    # observatory.tenancy.recent_keys). The request is to be authenticated and sent again.
    stale: bool = False

    @property
    def stored_anything(self) -> bool:
        """Whether a write ran (and so proved the key): accepted or already stored."""
        return bool(self.body.get("accepted") or self.body.get("duplicates"))


def _events_of(payload: Any) -> list[Any]:
    if isinstance(payload, dict) and "events" in payload:
        events = payload["events"]
        if not isinstance(events, list):
            raise IngestError("events: must be an array of event objects.", field="events")
        if not events:
            raise IngestError("events: the array is empty.", field="events")
        if len(events) > MAX_EVENTS_PER_REQUEST:
            raise IngestError(
                f"events: {len(events):,} events in one request; the limit is {MAX_EVENTS_PER_REQUEST:,}.",
                field="events",
            )
        return events
    if isinstance(payload, dict):
        return [payload]
    raise IngestError('The body must be one event object or {"events": [...]}.')


def events_ingest(*, project: Project, payload: Any, unproven_key: ApiKey | None = None) -> IngestReport:
    """Store the valid events of `payload` durably and exactly once; one bad event never
    drops the good ones. The report says, per event, what happened to it.

    `unproven_key`: the request's key when it was remembered rather than looked up; the write
    then stores nothing unless the key and project still hold, and the report is `stale`."""
    events = _events_of(payload)
    window = IngestWindow.now()
    results: list[dict[str, Any]] = []
    records = []
    positions = []
    for index, raw in enumerate(events):
        outcome = event_normalise(raw, window=window)
        result: dict[str, Any] = {"index": index, "status": "rejected"}
        if outcome.record is None:
            result["errors"] = outcome.errors
        else:
            result.update(trace_id=outcome.record.trace_id, span_id=outcome.record.span_id)
            records.append(outcome.record)
            positions.append(index)
        if outcome.warnings:
            result["warnings"] = outcome.warnings
        results.append(result)

    written = group_commit.write(project=project, records=records, unproven_key=unproven_key)
    if written.stale:
        return IngestReport(status=409, body={}, stale=True)
    for position in written.accepted:
        results[positions[position]]["status"] = "accepted"
    for position in written.duplicates:
        results[positions[position]]["status"] = "duplicate"

    rejected = len(events) - len(records)
    if rejected == 0:
        status = 200
    elif records:
        status = 207
    else:
        status = 400
    return IngestReport(
        status=status,
        body={
            "accepted": len(written.accepted),
            "duplicates": len(written.duplicates),
            "rejected": rejected,
            "results": results,
        },
    )
