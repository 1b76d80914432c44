"""Writes for alert rules: their lifecycle, and evaluation with its state changes.

A state change is claimed with a conditional UPDATE on the state the evaluation read (and
when it last changed): of two evaluations that both see a rule cross its threshold, one
changes the row and records and announces the change; the other changes nothing. A
re-notification is claimed the same way on `last_notified_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from observatory.alerts.models import (
    PERCENT_KINDS,
    SIGNAL_RATE_KINDS,
    AlertRule,
    AlertRuleChange,
    RuleKind,
    RuleState,
)
from observatory.alerts.selectors import Observation, rule_observe, rule_spend_table
from observatory.budgets.scopes import scope_label
from observatory.budgets.services import each_isolated, scope_value_check, watch_audit, watch_update
from observatory.notifications.formatting import dashboard_link, local_time, usd
from observatory.notifications.models import Notification, NotificationKind
from observatory.notifications.services import notification_claim
from observatory.reliability.loops import LOOP_REASON_LABELS
from observatory.tenancy.models import Project

def rule_create(*, project: Project, created_by=None, **fields: Any) -> AlertRule:
    rule = AlertRule(project=project, created_by=created_by)
    rule.assign(fields)
    scope_value_check(watch=rule)
    with transaction.atomic():
        rule.save()
        watch_audit(watch=rule, actor=created_by, action="alert_rule.create")
    return rule


def rule_update(*, rule: AlertRule, actor=None, **fields: Any) -> AlertRule:
    watch_update(watch=rule, actor=actor, action="alert_rule.update", fields=fields)
    return rule


def rule_delete(*, rule: AlertRule, actor=None) -> None:
    with transaction.atomic():
        watch_audit(watch=rule, actor=actor, action="alert_rule.delete")
        rule.delete()


def _plain(number: Decimal) -> str:
    """20, 2.5: a stored Decimal without the trailing zeros of its four decimal places."""
    return f"{number.normalize():f}"


def _description(*, rule: AlertRule, observation: Observation) -> str:
    value, window = observation.value, f"the last {rule.window_minutes} min"
    where = "" if rule.scope == "project" else f" for {scope_label(scope=rule.scope, value=rule.scope_value)}"
    if rule.kind == RuleKind.LATENCY:
        shown = "no calls" if value is None else f"{value:,.0f} ms"
        return f"{rule.percentile.upper()} latency{where} over {window}: {shown} (threshold {rule.threshold:,.0f} ms)"
    if rule.kind in PERCENT_KINDS:
        signal = SIGNAL_RATE_KINDS.get(rule.kind)
        what = signal.what if signal else (
            "error rate" if rule.kind == RuleKind.ERROR_RATE else "share of calls stopped at max tokens")
        shown = "no calls" if value is None else f"{value:.1f}%"
        bound = "at least" if signal and signal.below else "threshold"
        return f"{what.capitalize()}{where} over {window}: {shown} of {observation.calls:,} calls " \
               f"({bound} {_plain(rule.threshold)}%)"
    if rule.kind == RuleKind.LOOP:
        return f"{observation.calls:,} trace(s) flagged as runaway loops over {window} " \
               f"(threshold {_plain(rule.threshold)})"
    if rule.kind == RuleKind.SPEND:
        return f"Spend{where} over {window}: {usd(value or Decimal(0))} (threshold {usd(rule.threshold)})"
    offenders = observation.detail.get("offenders", [])
    if not offenders:
        return f"No {rule.dimension} spends more than {_plain(rule.factor)}× its baseline over {window}"
    return (f"{len(offenders)} {rule.dimension}(s) spent more than {_plain(rule.factor)}× their {rule.baseline_hours} h "
            f"baseline over {window}; the largest, {offenders[0]['name']}, spent {usd(offenders[0]['spent'])}")


def _table(*, rule: AlertRule, observation: Observation, now: datetime) -> dict[str, Any] | None:
    if rule.kind == RuleKind.RUNAWAY and observation.detail.get("offenders"):
        return {"title": f"Biggest {rule.dimension} spenders over the last {rule.window_minutes} min",
                "columns": [rule.dimension.capitalize(), "Spent", "Baseline predicts", "Times"],
                "rows": [[o["name"], usd(o["spent"]), usd(o["expected"]),
                          f"{o['ratio']:.1f}×" if o["ratio"] is not None else "new"]
                         for o in observation.detail["offenders"][:5]]}
    if rule.kind == RuleKind.LOOP and observation.detail.get("loops"):
        return {"title": f"Traces flagged as loops over the last {rule.window_minutes} min",
                "columns": ["Trace", "Spans", "Spent", "Why"],
                "rows": [[loop["name"] or loop["trace_id"], f"{loop['spans']:,}", usd(loop["cost"]),
                          ", ".join(LOOP_REASON_LABELS.get(reason, reason) for reason in loop["reasons"])]
                         for loop in observation.detail["loops"][:5]]}
    if rule.kind == RuleKind.SPEND:
        rows = rule_spend_table(rule=rule, now=now)
        return {"title": f"Spend by model over the last {rule.window_minutes} min",
                "columns": ["Model", "Calls", "Spend"],
                "rows": [[model, f"{calls:,}", usd(cost)] for model, calls, cost in rows]}
    return None


_KINDS = {RuleState.FIRING: NotificationKind.RULE_FIRING, RuleState.RESOLVED: NotificationKind.RULE_RESOLVED}
_HEADLINES = {NotificationKind.RULE_FIRING: "is firing", NotificationKind.RULE_RESOLVED: "has resolved",
              NotificationKind.RULE_RENOTIFY: "is still firing"}


def _announce(*, rule: AlertRule, observation: Observation, kind: str, key: str, now: datetime) -> Notification | None:
    description = _description(rule=rule, observation=observation)
    headline = f"Alert \"{rule.name}\" {_HEADLINES[kind]}"
    since = rule.state_changed_at if kind == NotificationKind.RULE_RENOTIFY else now
    context = {
        "headline": headline,
        "summary": f"{description}.",
        "facts": [["Rule", RuleKind(rule.kind).label], ["State", "firing" if kind != NotificationKind.RULE_RESOLVED
                                                        else "resolved"],
                  ["Since", local_time(since, time_zone=rule.project.time_zone)]],
        "table": _table(rule=rule, observation=observation, now=now),
        "link": dashboard_link(project_slug=rule.project.slug, section="alerts"),
        "data": {"rule_id": rule.pk, "rule": rule.name, "kind": rule.kind, "value": observation.value,
                 "threshold": rule.factor if rule.kind == RuleKind.RUNAWAY else rule.threshold,
                 "window_minutes": rule.window_minutes, "calls": observation.calls, **observation.detail},
    }
    return notification_claim(project=rule.project, key=key, kind=kind, subject=f"[{rule.project.slug}] {headline}",
                              context=context, recipients=rule.recipients, rule_id=rule.pk, now=now)


@dataclass
class RuleEvaluation:
    observation: Observation
    change: AlertRuleChange | None = None
    notification: Notification | None = None


def _renotify_due(rule: AlertRule, now: datetime) -> bool:
    if rule.state != RuleState.FIRING or not rule.renotify_minutes:
        return False
    return rule.last_notified_at is None or now >= rule.last_notified_at + timedelta(minutes=rule.renotify_minutes)


def rule_evaluate(*, rule: AlertRule, now: datetime | None = None) -> RuleEvaluation:
    now = (now or timezone.now()).astimezone(UTC)
    observation = rule_observe(rule=rule, now=now)
    evaluation = RuleEvaluation(observation=observation)
    muted = rule.muted_until is not None and rule.muted_until > now
    target = None
    if observation.breached and rule.state != RuleState.FIRING:
        target = RuleState.FIRING
    elif not observation.breached and rule.state == RuleState.FIRING:
        target = RuleState.RESOLVED
    if target is not None:
        with transaction.atomic():
            claimed = AlertRule.objects.filter(pk=rule.pk, state=rule.state, state_changed_at=rule.state_changed_at)
            notified = F("last_notified_at") if muted else now
            if claimed.update(state=target, state_changed_at=now, last_value=observation.value,
                              last_evaluated_at=now, last_notified_at=notified) != 1:
                return evaluation  # another evaluation moved it first
            evaluation.change = AlertRuleChange.objects.create(
                project_id=rule.project_id, rule=rule, from_state=rule.state, to_state=target,
                value=observation.value, detail=observation.detail, notified=not muted, created_at=now,
            )
            rule.state, rule.state_changed_at = target, now
            if not muted:
                evaluation.notification = _announce(rule=rule, observation=observation, kind=_KINDS[target],
                                                    key=f"rule:{rule.pk}:change:{evaluation.change.pk}", now=now)
                rule.last_notified_at = now
        return evaluation
    if _renotify_due(rule, now) and not muted:
        with transaction.atomic():
            claimed = AlertRule.objects.filter(pk=rule.pk, state=RuleState.FIRING,
                                               last_notified_at=rule.last_notified_at)
            if claimed.update(last_notified_at=now, last_value=observation.value, last_evaluated_at=now) == 1:
                evaluation.notification = _announce(rule=rule, observation=observation,
                                                    kind=NotificationKind.RULE_RENOTIFY,
                                                    key=f"rule:{rule.pk}:renotify:{now.isoformat()}", now=now)
                rule.last_notified_at = now
                return evaluation
    AlertRule.objects.filter(pk=rule.pk).update(last_value=observation.value, last_evaluated_at=now)
    return evaluation


def rules_evaluate(*, now: datetime | None = None, time_budget_seconds: float | None = None) -> dict[str, int]:
    """Evaluate every enabled rule, least recently evaluated first; one failing rule is logged
    and the others go on."""
    rules = (AlertRule.objects.filter(enabled=True).select_related("project")
             .order_by(F("last_evaluated_at").asc(nulls_first=True), "pk"))
    evaluations, failed = each_isolated(items=rules, action=lambda rule: rule_evaluate(rule=rule, now=now),
                                        what="evaluating alert rule", time_budget_seconds=time_budget_seconds)
    return {"evaluated": len(evaluations), "failed": failed,
            "changes": sum(evaluation.change is not None for evaluation in evaluations)}
