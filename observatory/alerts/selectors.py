"""What a rule sees over its window: the measured value, and whether it breaches the rule.

Latency, error rate, length share, the safety-net rates and spend come from the metrics
engine (exact to the second, percentiles within 1 %). Loop rules count the traces loop
detection (observatory.reliability.loops) flagged within the window. Runaway detection compares each user's, feature's or
trace's spend in the window with what its own trailing baseline predicts for a window that
long; users and features are read from rollups, traces from the call store (the window's
calls through the (project_id, start_time) index) and their trace summaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from observatory.alerts.models import SIGNAL_RATE_KINDS, AlertRule, AlertRuleChange, RuleKind, RunawayDimension
from observatory.budgets.scopes import scope_filters
from observatory.budgets.selectors import scope_spend, scope_spend_by_model
from observatory.calls.models import MODEL_CALL_KINDS, Trace
from observatory.metrics.selectors import metrics_query
from observatory.tenancy.models import Project

RUNAWAY_CANDIDATES = 50  # the biggest spenders of the window that are compared with their baseline
_DIMENSION_COLUMN = {RunawayDimension.USER: "user_id", RunawayDimension.FEATURE: "feature"}


@dataclass(frozen=True)
class Observation:
    value: Decimal | None  # in the rule's unit: ms, %, USD (runaway: the worst offender's spend)
    breached: bool
    calls: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


def _decimal(value: float | Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(str(round(value, 6)))


def _rate_observation(*, rule: AlertRule, start: datetime, now: datetime) -> Observation:
    """Latency percentile, error rate, length share or a signal rate of the window, breaching
    only with at least `min_calls` calls."""
    signal = SIGNAL_RATE_KINDS.get(rule.kind)
    metric = signal.metric if signal else {
        RuleKind.LATENCY: f"latency_{rule.percentile}", RuleKind.ERROR_RATE: "error_rate",
        RuleKind.LENGTH_SHARE: "finish_reason_share"}[rule.kind]
    result = metrics_query(project=rule.project, start=start, end=now, metrics=[metric, "count"],
                           filters=scope_filters(scope=rule.scope, value=rule.scope_value), now=now)
    row = result.rows[0] if result.rows else {}
    calls = row.get("count", 0)
    raw = row.get(metric)
    if rule.kind == RuleKind.LENGTH_SHARE:
        raw = (raw or {}).get("length", 0.0) * 100 if calls else None
    elif rule.kind != RuleKind.LATENCY and raw is not None:
        raw *= 100
    value = _decimal(raw)
    crossed = value is not None and (value < rule.threshold if signal and signal.below else value > rule.threshold)
    return Observation(value=value, breached=crossed and calls >= rule.min_calls, calls=calls)


LOOPS_LISTED = 10


def _loop_observation(*, rule: AlertRule, start: datetime) -> Observation:
    """Traces flagged as loops since the window started (still flagged ones flagged earlier
    do not count again: a rule fires on new loops and resolves once none appear)."""
    flagged = (Trace.objects.filter(project=rule.project, loop_flagged_at__gte=start)
               .order_by("-cost", "trace_id"))
    count = flagged.count()
    listed = [{"trace_id": t.trace_id, "name": t.name or "", "spans": t.span_count, "cost": t.cost,
               "reasons": t.loop_reasons or [], "repeated_prompts": t.repeated_prompts}
              for t in flagged[:LOOPS_LISTED]]
    return Observation(value=Decimal(count), breached=count >= rule.threshold, calls=count,
                       detail={"loops": listed})


def _baseline_of_traces(*, project: Project, recent: dict[str, Decimal], window_start: datetime,
                        window: timedelta) -> dict[str, Decimal]:
    """Each trace's spend before the window, as a rate over its life before the window, scaled
    to one window; 0 for traces that started within it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT trace_id, start_time, cost FROM calls_trace WHERE project_id = %s AND trace_id = ANY(%s)",
            [project.pk, list(recent)],
        )
        rows = cursor.fetchall()
    expected: dict[str, Decimal] = {}
    for trace_id, started, total in rows:
        before = max(Decimal(total) - recent[trace_id], Decimal(0))
        lived = window_start - started
        expected[trace_id] = before * Decimal(window / lived) if lived > timedelta(0) else Decimal(0)
    return expected


def _recent_traces(*, project: Project, start: datetime, end: datetime, min_spend: Decimal) -> dict[str, Decimal]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT trace_id, sum(cost) FROM calls_call
            WHERE project_id = %s AND start_time >= %s AND start_time < %s AND kind = ANY(%s)
            GROUP BY trace_id HAVING sum(cost) >= %s ORDER BY 2 DESC LIMIT %s
            """,
            [project.pk, start, end, sorted(MODEL_CALL_KINDS), min_spend, RUNAWAY_CANDIDATES],
        )
        return {trace_id: Decimal(cost) for trace_id, cost in cursor.fetchall()}


def runaway_offenders(*, rule: AlertRule, now: datetime) -> list[dict[str, Any]]:
    """Who spent at least `min_spend` in the window and more than `factor` times what their
    baseline predicts for a window that long; the biggest spender first."""
    window = timedelta(minutes=rule.window_minutes)
    window_start = now - window
    project = rule.project
    if rule.dimension == RunawayDimension.TRACE:
        recent = _recent_traces(project=project, start=window_start, end=now, min_spend=rule.min_spend)
        expected = _baseline_of_traces(project=project, recent=recent, window_start=window_start, window=window) \
            if recent else {}
    else:
        column = _DIMENSION_COLUMN[rule.dimension]
        rows = metrics_query(project=project, start=window_start, end=now, metrics=["cost"], group_by=[column],
                             order_by="-cost", limit=RUNAWAY_CANDIDATES, now=now).rows
        recent = {row[column]: row["cost"] for row in rows if row[column] and row["cost"] >= rule.min_spend}
        expected = {}
        if recent:
            baseline = timedelta(hours=rule.baseline_hours)
            rows = metrics_query(project=project, start=window_start - baseline, end=window_start, metrics=["cost"],
                                 group_by=[column], filters={column: list(recent)}, now=now).rows
            expected = {row[column]: row["cost"] * Decimal(window / baseline) for row in rows}
    offenders = []
    for name, spent in recent.items():
        usual = expected.get(name, Decimal(0))
        if spent > rule.factor * usual:
            offenders.append({"name": name, "spent": spent, "expected": usual,
                              "ratio": (spent / usual) if usual else None})
    return sorted(offenders, key=lambda offender: offender["spent"], reverse=True)


def rule_observe(*, rule: AlertRule, now: datetime | None = None) -> Observation:
    now = (now or timezone.now()).astimezone(UTC)
    start = now - timedelta(minutes=rule.window_minutes)
    if rule.kind == RuleKind.SPEND:
        spend = scope_spend(project=rule.project, scope=rule.scope, value=rule.scope_value, start=start, end=now,
                            now=now)
        return Observation(value=spend.cost, breached=spend.cost > rule.threshold, calls=spend.calls)
    if rule.kind == RuleKind.LOOP:
        return _loop_observation(rule=rule, start=start)
    if rule.kind == RuleKind.RUNAWAY:
        offenders = runaway_offenders(rule=rule, now=now)
        return Observation(value=offenders[0]["spent"] if offenders else None, breached=bool(offenders),
                           detail={"offenders": offenders[:10]})
    return _rate_observation(rule=rule, start=start, now=now)


def rule_spend_table(*, rule: AlertRule, now: datetime) -> list[tuple[str, int, Decimal]]:
    """The window's spend by model, for spend rules' messages."""
    return scope_spend_by_model(project=rule.project, scope=rule.scope, value=rule.scope_value,
                                start=now - timedelta(minutes=rule.window_minutes), end=now, now=now)


def rule_changes_list(*, rule: AlertRule, limit: int = 100) -> list[AlertRuleChange]:
    """The rule's state changes, newest first."""
    return list(rule.changes.order_by("-created_at", "-pk")[:limit])


def rules_list(*, project: Project):
    """The project's alert rules by name, with their current state."""
    return AlertRule.objects.filter(project=project).select_related("project").order_by("name", "pk")
