"""Langfuse's legacy batch ingestion and its score API, onto Observatory's call store.

A batch mixes traces, observations (created, then updated as they finish), scores and SDK
logs. Creates and the updates of the same observation in one batch are merged into one call
before anything is written, which is what Langfuse SDKs usually send; an update of a call
stored by an earlier request becomes a patch. Everything in a batch is written in one
transaction, and each event gets its own result, as Langfuse answers (HTTP 207).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from django.db import transaction

from ingest.langfuse.schema import Envelope, ObservationBody, ScoreBody, TraceBody
from ingest.limits import IngestWindow, TooDeep, bounded_content, truncate
from ingest.signals import METADATA_KEYS, LenientSignals
from ingest.usage import Usage, consistent, usage_from_details
from observatory.calls.models import CallKind, ScoreDataType
from observatory.calls.records import (
    MAX_ERROR_MESSAGE_LENGTH,
    MAX_ID_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_NAME_LENGTH,
    CallPatch,
    CallRecord,
    ScoreRecord,
    TraceAnnotation,
    cost_problem,
)
from observatory.calls.services import calls_write
from observatory.calls.updates import PatchInvalid, call_patched, calls_patch, scores_write, traces_annotate
from observatory.tenancy.models import Project

MAX_BATCH = 10_000
OBSERVATION_TYPES = {value: value for value in CallKind.values} | {"observation": None}
SCORE_TYPES = {"NUMERIC": ScoreDataType.NUMERIC, "BOOLEAN": ScoreDataType.BOOLEAN,
               "CATEGORICAL": ScoreDataType.CATEGORICAL, "TEXT": ScoreDataType.TEXT, "CORRECTION": ScoreDataType.TEXT}


class EventError(ValueError):
    """One event of a batch cannot be stored; the message says why."""


@dataclass
class BatchResult:
    successes: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def ok(self, event_id: str, warnings: list[str] | None = None) -> None:
        # Langfuse's success entries carry only id and status; warnings (what was ignored) are
        # an extra key its SDKs pass over, so only clients that look for them see them.
        # A create sent twice in one batch is read twice: say each problem once.
        shown = list(dict.fromkeys(warnings or ()))
        self.successes.append({"id": event_id, "status": 201, **({"warnings": shown} if shown else {})})

    def fail(self, event_id: str, message: str, status: int = 400) -> None:
        self.errors.append({"id": event_id, "status": status, "message": message, "error": message})


def _id(value: str | None, name: str) -> str | None:
    if value is not None and not 1 <= len(value) <= MAX_ID_LENGTH:
        raise EventError(f"{name} must be 1 to {MAX_ID_LENGTH} characters long")
    return value


def _label(value: str | None, name: str) -> str | None:
    if value is not None and len(value) > MAX_LABEL_LENGTH:
        raise EventError(f"{name} is longer than {MAX_LABEL_LENGTH} characters")
    return value


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _usage(body: ObservationBody, warnings: list[str]) -> Usage | None:
    if body.usage_details:
        return usage_from_details(body.usage_details, warnings)
    usage = body.usage
    if usage is None:
        return None
    if usage.prompt_tokens is not None or usage.completion_tokens is not None:
        return consistent(Usage(input_tokens=usage.prompt_tokens or 0, output_tokens=usage.completion_tokens or 0,
                                total_tokens=usage.total_tokens))
    if usage.unit not in (None, "TOKENS"):
        warnings.append(f"usage in {usage.unit} is not token usage; ignored")
        return None
    return Usage(input_tokens=usage.input or 0, output_tokens=usage.output or 0, total_tokens=usage.total)


def _cost(body: ObservationBody) -> Decimal | None:
    amounts: list[Any] = []
    if body.cost_details:
        amounts = [body.cost_details["total"]] if "total" in body.cost_details else list(body.cost_details.values())
    elif body.usage is not None:
        if body.usage.total_cost is not None:
            amounts = [body.usage.total_cost]
        else:
            amounts = [value for value in (body.usage.input_cost, body.usage.output_cost) if value is not None]
    if not amounts:
        return None
    try:
        total = sum((Decimal(str(amount)) for amount in amounts), Decimal(0))
    except InvalidOperation:
        raise EventError("costDetails must hold numbers") from None
    if problem := cost_problem(total):
        raise EventError(f"cost {problem}")
    return total


def _metadata(body: ObservationBody, warnings: list[str]) -> dict[str, Any]:
    metadata = body.metadata if isinstance(body.metadata, dict) else ({} if body.metadata is None else
                                                                      {"metadata": body.metadata})
    metadata = dict(metadata)
    if body.model_parameters:
        metadata["model_parameters"] = body.model_parameters
    if body.version:
        metadata["version"] = body.version
    if body.status_message and (body.level or "").upper() != "ERROR":
        metadata["status_message"] = body.status_message
    if body.level and body.level.upper() not in ("DEFAULT", "ERROR"):
        metadata["level"] = body.level.upper()
    return metadata


def _signals(body: ObservationBody, warnings: list[str], *, span_id: str | None) -> dict[str, Any]:
    """Limits and streaming from modelParameters, caches, retries, fallbacks and filters from
    metadata keys (Langfuse has no fields for them); a bad value is ignored and named."""
    signals = LenientSignals(warnings)
    signals.model_parameters(body.model_parameters or {}, "modelParameters.")
    metadata = body.metadata if isinstance(body.metadata, dict) else {}
    for key in METADATA_KEYS:
        if metadata.get(key) is not None:
            signals.metadata_key(key, f"metadata.{key}", metadata[key])
    return signals.checked(span_id=span_id, provider=None, model=body.model)


def _content(body: ObservationBody, truncated: list[str]) -> tuple[Any, Any]:
    try:
        return bounded_content(body.input, "input", truncated), bounded_content(body.output, "output", truncated)
    except TooDeep as problem:
        raise EventError(f"input or output {problem}") from None


def observation_record(envelope: Envelope, body: ObservationBody, kind: str, window: IngestWindow,
                       warnings: list[str]) -> CallRecord:
    """The call an observation create describes; what was ignored is added to `warnings`."""
    span_id = _id(body.id or envelope.id, "id")
    start = _aware(body.start_time) or _aware(envelope.timestamp) or datetime.now(UTC)
    if not window.oldest <= start <= window.newest:
        raise EventError(f"startTime {start.isoformat()} is outside the ingest window")
    end = _aware(body.end_time)
    if kind == CallKind.EVENT and end is None:
        end = start
    if end is not None and end < start:
        raise EventError("endTime is before startTime")
    usage = _usage(body, warnings) or Usage()
    first_token = _aware(body.completion_start_time)
    truncated: list[str] = []
    prompt, completion = _content(body, truncated)
    failed = (body.level or "").upper() == "ERROR"
    metadata = _metadata(body, warnings)
    if truncated:
        metadata["_truncated"] = truncated
    return CallRecord(
        trace_id=_id(body.trace_id, "traceId") or span_id,
        span_id=span_id,
        parent_span_id=_id(body.parent_observation_id, "parentObservationId"),
        name=truncate(body.name or "", MAX_NAME_LENGTH, "name", truncated) or "",
        kind=kind,
        start_time=start,
        end_time=end,
        time_to_first_token_ms=(first_token - start).total_seconds() * 1000
        if first_token is not None and first_token >= start else None,
        model=_label(body.model, "model"),
        **usage.record_fields(),
        cost=_cost(body),
        status="error" if failed else "ok",
        error_message=truncate(body.status_message, MAX_ERROR_MESSAGE_LENGTH, "error_message", truncated)
        if failed else None,
        environment=_label(body.environment, "environment"),
        prompt_name=_label(body.prompt_name, "promptName"),
        prompt_version=None if body.prompt_version is None else str(body.prompt_version),
        metadata=metadata,
        input=prompt,
        output=completion,
        **_signals(body, warnings, span_id=span_id),
    )


def observation_patch(body: ObservationBody, *, trace_id: str, warnings: list[str]) -> CallPatch:
    """What an update event changes: only the fields it carries, normalised like a create's;
    what was ignored is added to `warnings`."""
    truncated: list[str] = []
    changes: dict[str, Any] = {}
    if body.end_time is not None:
        changes["end_time"] = _aware(body.end_time)
    if body.completion_start_time is not None:
        changes["first_token_at"] = _aware(body.completion_start_time)
    if body.name is not None:
        changes["name"] = truncate(body.name, MAX_NAME_LENGTH, "name", truncated)
    if body.parent_observation_id is not None:
        changes["parent_span_id"] = _id(body.parent_observation_id, "parentObservationId")
    for target, value, name in (("model", body.model, "model"), ("environment", body.environment, "environment"),
                                ("prompt_name", body.prompt_name, "promptName")):
        if value is not None:
            changes[target] = _label(value, name)
    if body.prompt_version is not None:
        changes["prompt_version"] = str(body.prompt_version)
    usage = _usage(body, warnings)
    if usage is not None:
        changes.update(usage.record_fields())
    cost = _cost(body)
    if cost is not None:
        changes["cost"] = cost
    if body.level is not None:
        failed = body.level.upper() == "ERROR"
        changes["status"] = "error" if failed else "ok"
        if failed and body.status_message:
            changes["error_message"] = truncate(body.status_message, MAX_ERROR_MESSAGE_LENGTH, "error_message",
                                                truncated)
    metadata = _metadata(body, warnings)
    if metadata:
        changes["metadata"] = metadata
    if body.input is not None or body.output is not None:
        changes["input"], changes["output"] = _content(body, truncated)
    if truncated:
        changes["metadata"] = {**changes.get("metadata", {}), "_truncated": truncated}
    changes.update(_signals(body, warnings, span_id=body.id))
    return CallPatch(trace_id=trace_id, span_id=_id(body.id, "id"), **changes)


def trace_annotation(envelope: Envelope, body: TraceBody) -> TraceAnnotation:
    truncated: list[str] = []
    try:
        trace_input = bounded_content(body.input, "input", truncated)
        trace_output = bounded_content(body.output, "output", truncated)
    except TooDeep as problem:
        raise EventError(f"input or output {problem}") from None
    metadata = body.metadata if isinstance(body.metadata, dict) else (
        None if body.metadata is None else {"metadata": body.metadata})
    if body.version:
        metadata = {**(metadata or {}), "version": body.version}
    return TraceAnnotation(
        trace_id=_id(body.id or envelope.id, "id"),
        timestamp=_aware(body.timestamp) or _aware(envelope.timestamp),
        name=truncate(body.name, MAX_NAME_LENGTH, "name", truncated),
        user_id=_label(body.user_id, "userId"),
        session_id=_label(body.session_id, "sessionId"),
        environment=_label(body.environment, "environment"),
        release=_label(body.release, "release"),
        tags=[tag[:200] for tag in (body.tags or [])],
        input=trace_input,
        output=trace_output,
        metadata=metadata,
    )


def score_record(body: ScoreBody, *, fallback_id: str | None, fallback_time: datetime | None) -> ScoreRecord:
    if body.trace_id is None and body.session_id is None:
        if body.dataset_run_id:
            raise EventError("scores on dataset runs are not supported; score a trace or a session")
        raise EventError("traceId or sessionId is required")
    declared = (body.data_type or "").upper()
    if declared and declared not in SCORE_TYPES:
        raise EventError(f"dataType must be one of {', '.join(SCORE_TYPES)}")
    data_type = SCORE_TYPES.get(declared) or (ScoreDataType.CATEGORICAL if isinstance(body.value, str)
                                              else ScoreDataType.NUMERIC)
    value, string_value = None, None
    if data_type in (ScoreDataType.NUMERIC, ScoreDataType.BOOLEAN):
        if isinstance(body.value, str):
            raise EventError(f"value must be a number for a {data_type} score")
        value = float(body.value)
        if data_type == ScoreDataType.BOOLEAN and value not in (0.0, 1.0):
            raise EventError("value of a BOOLEAN score must be 0 or 1")
    else:
        string_value = body.value if isinstance(body.value, str) else str(body.value)
    return ScoreRecord(
        score_id=_id(body.id or fallback_id or uuid.uuid4().hex, "id"),
        name=_label(body.name, "name") or "score",
        data_type=data_type,
        timestamp=_aware(body.timestamp) or fallback_time or datetime.now(UTC),
        trace_id=_id(body.trace_id, "traceId"),
        span_id=_id(body.observation_id, "observationId"),
        session_id=_label(body.session_id, "sessionId"),
        value=value,
        string_value=string_value,
        comment=body.comment,
        source=(body.source or "API").lower(),
    )


def _event_kind(event_type: str) -> tuple[str | None, str]:
    """("span", "create") for "span-create"; (None, "create") for "observation-create"."""
    name, _, action = event_type.rpartition("-")
    if action not in ("create", "update") or name not in OBSERVATION_TYPES:
        raise EventError(f"unknown event type {event_type!r}")
    return OBSERVATION_TYPES[name], action


@dataclass
class _Create:
    """One observation created in a batch, with every later event of the batch merged into it."""

    record: CallRecord
    positions: list[int]
    patches: list[tuple[int, CallPatch]] = field(default_factory=list)


def ingestion_process(*, project: Project, batch: list[Any]) -> BatchResult:
    """Every event of the batch gets exactly one answer, in batch order."""
    window = IngestWindow.now()
    answers: dict[int, tuple[int, str | None]] = {}  # position -> (status, error message)
    notes: dict[int, list[str]] = {}  # position -> what was ignored in an accepted event
    ids = [raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else "unknown" for raw in batch]
    creates: dict[str, _Create] = {}  # observation id -> its create
    updates: list[tuple[int, ObservationBody]] = []
    annotations: list[tuple[int, TraceAnnotation]] = []
    scores: list[tuple[int, ScoreRecord]] = []
    for position, raw in enumerate(batch):
        try:
            envelope = msgspec.convert(raw, Envelope)
            if envelope.type == "sdk-log":
                answers[position] = (201, None)
            elif envelope.type == "trace-create":
                body = msgspec.convert(envelope.body, TraceBody)
                annotations.append((position, trace_annotation(envelope, body)))
            elif envelope.type == "score-create":
                body = msgspec.convert(envelope.body, ScoreBody)
                scores.append((position, score_record(body, fallback_id=envelope.id,
                                                      fallback_time=_aware(envelope.timestamp))))
            else:
                kind, action = _event_kind(envelope.type)
                body = msgspec.convert(envelope.body, ObservationBody)
                kind = kind or (body.type or "span").lower()
                if kind not in CallKind.values:
                    raise EventError(f"unknown observation type {body.type!r}")
                if action == "update":
                    if not body.id:
                        raise EventError("an update needs the id of the observation it updates")
                    updates.append((position, body))
                    continue
                record = observation_record(envelope, body, kind, window, notes.setdefault(position, []))
                if record.span_id in creates:
                    # Creating an observation again in one batch updates it, as Langfuse does.
                    body = msgspec.structs.replace(body, id=record.span_id)
                    updates.append((position, body))
                else:
                    creates[record.span_id] = _Create(record=record, positions=[position])
        except (msgspec.ValidationError, EventError) as problem:
            answers[position] = (400, str(problem))

    patches: list[tuple[int, CallPatch]] = []
    for position, body in updates:
        target = creates.get(body.id)
        try:
            if target is not None:
                patch = observation_patch(body, trace_id=target.record.trace_id,
                                          warnings=notes.setdefault(position, []))
                target.record = call_patched(target.record, patch)
                target.positions.append(position)
                target.patches.append((position, patch))
            elif body.trace_id is None:
                raise EventError("an update of an observation from an earlier request needs its traceId")
            else:
                patches.append((position, observation_patch(body, trace_id=_id(body.trace_id, "traceId"),
                                                            warnings=notes.setdefault(position, []))))
        except (EventError, PatchInvalid) as problem:
            answers[position] = (400, str(problem))

    entries = list(creates.values())
    with transaction.atomic():
        written = calls_write(project=project, records=[entry.record for entry in entries])
        # A create stored by an earlier request (a retried batch) may come back with new updates.
        for index in written.duplicates:
            patches.extend(entries[index].patches)
        traces_annotate(project=project, annotations=[note for _, note in annotations])
        scores_write(project=project, scores=[score for _, score in scores])
        patched = calls_patch(project=project, patches=[patch for _, patch in patches])
    for entry in entries:
        answers.update({position: (201, None) for position in entry.positions})
    answers.update({position: (201, None) for position, _ in annotations + scores})
    invalid = dict(patched.invalid)
    missing = set(patched.missing)
    for index, (position, _) in enumerate(patches):
        if index in missing:
            answers[position] = (404, "no observation with this id in this trace: send its create event first")
        elif index in invalid:
            answers[position] = (400, invalid[index])
        else:
            answers.setdefault(position, (201, None))

    result = BatchResult()
    for position in range(len(batch)):
        status, message = answers[position]
        if message is None:
            result.ok(ids[position], notes.get(position))
        else:
            result.fail(ids[position], message, status)
    return result


def scores_process(*, project: Project, items: list[Any]) -> tuple[list[str], list[str]]:
    """POST /api/public/scores: (accepted ids, error messages)."""
    accepted, errors, records = [], [], []
    for index, item in enumerate(items):
        try:
            record = score_record(msgspec.convert(item, ScoreBody), fallback_id=None, fallback_time=None)
        except (msgspec.ValidationError, EventError) as problem:
            errors.append(f"score {index}: {problem}")
            continue
        records.append(record)
        accepted.append(record.score_id)
    scores_write(project=project, scores=records)
    return accepted, errors
