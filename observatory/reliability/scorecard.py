"""The readiness scorecard: the production checklist a team sets itself, checked against the
telemetry it already sends.

Each item is pass, warn or fail over a window, with the numbers it was decided on and a few
example calls to look at. Thresholds are the project's (models.ReliabilitySettings). An "at
least" item passes at its threshold and warns down to 80 % of it; an "at most" item passes
at its threshold and warns up to twice it; below or above that, it fails.

Everything but the examples comes from the metrics engine (rollups, exact to the second),
so a 30-day scorecard costs about what a 1-hour one does. Examples are read from the
window's newest calls, at most EXAMPLE_SCAN of them, or from the partial indexes on retries
and fallbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.db import connection

from observatory.budgets.models import Budget
from observatory.calls.models import MODEL_CALL_KINDS
from observatory.metrics.selectors import metrics_query
from observatory.reliability.models import ReliabilitySettings
from observatory.reliability.selectors import reliability_settings_get
from observatory.tenancy.models import Project

EXAMPLES = 3
EXAMPLE_SCAN = 5000
WARN_BELOW = Decimal("0.8")  # "at least" items warn down to 80 % of the threshold
WARN_ABOVE = 2  # "at most" items warn up to twice the threshold
_MODEL_KINDS = ", ".join(f"'{kind}'" for kind in sorted(MODEL_CALL_KINDS))


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


# The choice set the API documents (one named enum, shared by items and the card).
STATUS_VALUES = tuple(status.value for status in Status)


@dataclass(frozen=True)
class Example:
    id: int
    trace_id: str
    span_id: str
    start_time: datetime
    name: str


@dataclass
class Item:
    key: str
    title: str
    status: Status
    summary: str = ""  # one sentence with the numbers
    value: float | None = None  # the measured figure, in the threshold's unit
    threshold: Decimal | int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    examples: list[Example] = field(default_factory=list)


@dataclass
class Scorecard:
    start: datetime
    end: datetime
    calls: int
    items: list[Item]

    @property
    def counts(self) -> dict[str, int]:
        return {status.value: sum(item.status == status for item in self.items) for status in Status}

    @property
    def status(self) -> Status:
        """The worst item's status."""
        for status in (Status.FAIL, Status.WARN):
            if any(item.status == status for item in self.items):
                return status
        return Status.PASS


def at_least(value: float, threshold: Decimal) -> Status:
    if value >= threshold:
        return Status.PASS
    return Status.WARN if value >= threshold * WARN_BELOW else Status.FAIL


def at_most(value: float, threshold: Decimal | int) -> Status:
    if value <= threshold:
        return Status.PASS
    return Status.WARN if value <= threshold * WARN_ABOVE else Status.FAIL


def _pct(share: float | None) -> float | None:
    return None if share is None else share * 100


def _fmt(number: Decimal | int | float) -> str:
    """12, 2.5, 99.9: a threshold or percentage without trailing zeros."""
    if isinstance(number, Decimal):
        return f"{number.normalize():f}"
    return f"{number:,.1f}".removesuffix(".0")


class _Examples:
    """Example calls of the window matching a condition (static SQL below, never user text).
    With `wanted` False, none are read (a summary that shows no examples)."""

    def __init__(self, *, project: Project, start: datetime, end: datetime, wanted: bool = True) -> None:
        self.params = {"project": project.pk, "start": start, "end": end, "limit": EXAMPLES, "scan": EXAMPLE_SCAN}
        self.wanted = wanted

    def recent(self, condition: str, *, order: str = "start_time DESC", **params: Any) -> list[Example]:
        return self._fetch(f"""
            SELECT id, trace_id, span_id, start_time, name FROM (
                SELECT * FROM calls_call
                WHERE project_id = %(project)s AND start_time >= %(start)s AND start_time < %(end)s
                  AND kind IN ({_MODEL_KINDS})
                ORDER BY start_time DESC LIMIT %(scan)s
            ) recent WHERE {condition} ORDER BY {order} LIMIT %(limit)s""", params)

    def indexed(self, condition: str, **params: Any) -> list[Example]:
        """For conditions a partial index covers (retries, fallbacks): newest first, no scan cap."""
        return self._fetch(f"""
            SELECT id, trace_id, span_id, start_time, name FROM calls_call
            WHERE project_id = %(project)s AND start_time >= %(start)s AND start_time < %(end)s AND {condition}
            ORDER BY start_time DESC LIMIT %(limit)s""", params)

    def count(self, condition: str, **params: Any) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"""
                SELECT count(*) FROM calls_call
                WHERE project_id = %(project)s AND start_time >= %(start)s AND start_time < %(end)s
                  AND {condition}""", {**self.params, **params})
            return cursor.fetchone()[0]

    def _fetch(self, sql: str, params: dict[str, Any]) -> list[Example]:
        if not self.wanted:
            return []
        with connection.cursor() as cursor:
            cursor.execute(sql, {**self.params, **params})
            return [Example(*row) for row in cursor.fetchall()]


@dataclass
class _Window:
    project: Project
    start: datetime
    end: datetime
    now: datetime
    limits: ReliabilitySettings
    totals: dict[str, Any]
    examples: _Examples

    def query(self, metrics: list[str], **options: Any) -> list[dict[str, Any]]:
        return metrics_query(project=self.project, start=self.start, end=self.end, metrics=metrics, now=self.now,
                             **options).rows


TOTALS = ["count", "errors", "error_rate", "latency_p99", "max_tokens_share", "timeout_set_share", "retry_rate",
          "retries", "fallbacks", "failed_fallbacks", "fallback_success_rate", "content_filter_share",
          "finish_reason_share"]


def _share_item(window: _Window, *, key: str, title: str, metric: str, threshold_field: str, what: str,
                missing: str) -> Item:
    """An "at least T % of model calls ..." item, with examples of calls that do not."""
    threshold = getattr(window.limits, threshold_field)
    value = _pct(window.totals.get(metric))
    status = at_least(value, threshold)
    calls = window.totals["count"]
    item = Item(key=key, title=title, status=status, value=value, threshold=threshold,
                summary=f"{_fmt(value)}% of {calls:,} model calls {what} (at least {_fmt(threshold)}%).",
                evidence={"calls": calls, "share_percent": value})
    if status != Status.PASS:
        item.examples = window.examples.recent(missing)
    return item


def _max_tokens(window: _Window) -> Item:
    return _share_item(window, key="max_tokens", title="max_tokens set on every call", metric="max_tokens_share",
                       threshold_field="min_max_tokens_share", what="set max_tokens", missing="max_tokens IS NULL")


def _truncation(window: _Window) -> Item:
    threshold = window.limits.max_length_share
    value = (window.totals.get("finish_reason_share") or {}).get("length", 0.0) * 100
    status = at_most(value, threshold)
    item = Item(key="truncation", title="Few answers cut off at max_tokens", status=status, value=value,
                threshold=threshold, evidence={"length_share_percent": value},
                summary=f"{_fmt(value)}% of model calls stopped at max_tokens (finish_reason=length; "
                        f"at most {_fmt(threshold)}%).")
    if status != Status.PASS:
        item.examples = window.examples.recent("finish_reason = 'length'")
    return item


def _streaming(window: _Window) -> Item:
    after, threshold = window.limits.stream_after_ms, window.limits.min_streamed_share
    features = window.query(["count", "latency_p50", "streamed_share"], group_by=["feature"])
    slow = sorted(
        ({"feature": row["feature"], "calls": row["count"], "latency_p50_ms": row["latency_p50"],
          "streamed_percent": _pct(row["streamed_share"])}
         for row in features if row["latency_p50"] is not None and row["latency_p50"] >= after),
        key=lambda row: row["streamed_percent"])
    item = Item(key="streaming", title="Streaming where users wait", status=Status.PASS, threshold=threshold,
                evidence={"stream_after_ms": after, "slow_features": slow})
    if not slow:
        item.summary = f"No feature keeps users waiting: every median latency is under {after:,} ms."
        return item
    worst = slow[0]
    item.value = worst["streamed_percent"]
    item.status = at_least(item.value, threshold)
    name = worst["feature"] or "calls without a feature"
    item.summary = (f"{len(slow)} feature(s) take {after:,} ms or more at the median; the least streamed, "
                    f"{name}, streams {_fmt(item.value)}% of its calls (at least {_fmt(threshold)}%).")
    if item.status != Status.PASS:
        condition = "streamed IS NOT TRUE AND " + (
            "feature = %(feature)s" if worst["feature"] is not None else "feature IS NULL")
        item.examples = window.examples.recent(condition, feature=worst["feature"])
    return item


def _timeouts(window: _Window) -> Item:
    return _share_item(window, key="timeouts", title="Timeouts configured", metric="timeout_set_share",
                       threshold_field="min_timeout_share", what="had a timeout configured",
                       missing="timeout_ms IS NULL")


def _retries(window: _Window) -> Item:
    most, threshold = window.limits.max_attempts, window.limits.max_retry_share
    # "attempt > 1 AND" lets the planner use the partial index on retries whatever `most` is.
    over = window.examples.count("attempt > 1 AND attempt > %(most)s", most=most)
    value = _pct(window.totals.get("retry_rate")) or 0.0
    item = Item(key="retries", title="Retries bounded", status=at_most(value, threshold), value=value,
                threshold=threshold, evidence={"retries": window.totals["retries"], "retry_percent": value,
                                               "max_attempts": most, "calls_over_max_attempts": over})
    if over:
        item.status = Status.FAIL
        item.summary = f"{over:,} call(s) went past {most} attempts; {_fmt(value)}% of calls are retries."
        item.examples = window.examples.indexed("attempt > 1 AND attempt > %(most)s", most=most)
    else:
        item.summary = (f"No call went past {most} attempts; {_fmt(value)}% of calls are retries "
                        f"(at most {_fmt(threshold)}%).")
        if item.status != Status.PASS:
            item.examples = window.examples.indexed("attempt > 1")
    return item


def _fallbacks(window: _Window) -> Item:
    threshold = window.limits.min_fallback_success
    fallbacks, failed = window.totals["fallbacks"], window.totals["failed_fallbacks"]
    item = Item(key="fallbacks", title="Fallbacks exercised and succeeding", status=Status.WARN, threshold=threshold,
                evidence={"fallbacks": fallbacks, "failed_fallbacks": failed})
    if not fallbacks:
        item.summary = "No call fell back to another model in this window: the fallback path is untested."
        return item
    item.value = _pct(window.totals["fallback_success_rate"])
    item.status = at_least(item.value, threshold)
    item.summary = (f"{fallbacks:,} fallback call(s), {_fmt(item.value)}% succeeding "
                    f"(at least {_fmt(threshold)}%).")
    if failed:
        item.examples = window.examples.indexed(
            "(fallback_from_model IS NOT NULL OR fallback_from_provider IS NOT NULL) AND status = 'error'")
    return item


def _budget(window: _Window) -> Item:
    budgets = list(Budget.objects.filter(project=window.project, enabled=True).order_by("name"))
    # Every budget has alert thresholds (the model requires at least one); the cap is optional.
    guarded = [b for b in budgets if b.hard_cap]
    item = Item(key="budget", title="A budget with thresholds and a hard cap", status=Status.PASS,
                evidence={"budgets": [{"name": b.name, "hard_cap": b.hard_cap, "thresholds": b.thresholds}
                                      for b in budgets]})
    if guarded:
        item.summary = f"{guarded[0].name} alerts at {', '.join(f'{t}%' for t in guarded[0].thresholds)} " \
                       f"and stops spend at its cap."
    elif budgets:
        item.status = Status.WARN
        item.summary = f"{len(budgets)} budget(s) alert on spend, but none has a hard cap to stop it."
    else:
        item.status = Status.FAIL
        item.summary = "No budget: nothing tells anyone before the money is gone."
    return item


def _latency(window: _Window) -> Item:
    threshold = window.limits.latency_budget_ms
    value = window.totals.get("latency_p99")
    if value is None:
        return Item(key="latency", title="P99 latency within budget", status=Status.WARN, threshold=threshold,
                    summary="No latency measured in this window.")
    status = at_most(value, threshold)
    item = Item(key="latency", title="P99 latency within budget", status=status, value=value, threshold=threshold,
                summary=f"P99 latency {value:,.0f} ms (at most {threshold:,} ms).", evidence={"latency_p99_ms": value})
    if status != Status.PASS:
        item.examples = window.examples.recent("latency_ms > %(budget)s", order="latency_ms DESC", budget=threshold)
    return item


def _errors(window: _Window) -> Item:
    threshold = window.limits.max_error_rate
    value = _pct(window.totals.get("error_rate"))
    status = at_most(value, threshold)
    item = Item(key="errors", title="Error rate under control", status=status, value=value, threshold=threshold,
                summary=f"{_fmt(value)}% of model calls failed ({window.totals['errors']:,}; "
                        f"at most {_fmt(threshold)}%).", evidence={"errors": window.totals["errors"]})
    if status != Status.PASS:
        item.examples = window.examples.recent("status = 'error'")
    return item


def _prompt_versions(window: _Window) -> Item:
    threshold = window.limits.min_prompt_version_share
    rows = window.query(["count"], group_by=["prompt_name", "prompt_version"])
    versioned = sum(row["count"] for row in rows if row["prompt_name"] and row["prompt_version"])
    calls = window.totals["count"]
    value = versioned * 100 / calls
    status = at_least(value, threshold)
    item = Item(key="prompt_versions", title="Prompts carry a name and a version", status=status, value=value,
                threshold=threshold, evidence={"versioned_calls": versioned, "calls": calls},
                summary=f"{_fmt(value)}% of model calls name their prompt and its version "
                        f"(at least {_fmt(threshold)}%).")
    if status != Status.PASS:
        item.examples = window.examples.recent("(prompt_name IS NULL OR prompt_version IS NULL)")
    return item


def _content_filter(window: _Window) -> Item:
    return _share_item(window, key="content_filter", title="Content filtering applied",
                       metric="content_filter_share", threshold_field="min_content_filter_share",
                       what="went through a content filter", missing="content_filter IS NULL")


ITEMS: tuple[Callable[[_Window], Item], ...] = (
    _max_tokens, _truncation, _streaming, _timeouts, _retries, _fallbacks, _budget, _latency, _errors,
    _prompt_versions, _content_filter,
)


def scorecard_get(*, project: Project, start: datetime, end: datetime, now: datetime,
                  examples: bool = True) -> Scorecard:
    limits = reliability_settings_get(project=project)
    rows = metrics_query(project=project, start=start, end=end, metrics=TOTALS, now=now).rows
    totals = rows[0] if rows else {}
    calls = totals.get("count", 0)
    if not calls:
        return Scorecard(start=start, end=end, calls=0, items=[])
    window = _Window(project=project, start=start, end=end, now=now, limits=limits, totals=totals,
                     examples=_Examples(project=project, start=start, end=end, wanted=examples))
    return Scorecard(start=start, end=end, calls=calls, items=[item(window) for item in ITEMS])
