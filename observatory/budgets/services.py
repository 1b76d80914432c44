"""Writes for budgets: their lifecycle, the recorded spend the guard answers from, and the
evaluation that tells people when thresholds are crossed or the money is about to run out.

Each notification is claimed once per (budget, period, threshold) by notification_claim's
conditional insert, so evaluations may run any number of times and concurrently. A new
period has new keys: it starts clean.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from observatory.audit.services import audit_record
from observatory.budgets.models import Budget, Watch
from observatory.budgets.periods import period_bounds, period_label
from observatory.budgets.scopes import ScopeKind, scope_label
from observatory.budgets.selectors import (
    Burn,
    budget_burn,
    guard_cache_key,
    scope_spend,
    scope_spend_by_model,
    scope_value_exists,
)
from observatory.notifications.formatting import dashboard_link, local_day, local_time, percent, usd
from observatory.notifications.models import Notification, NotificationKind
from observatory.notifications.recipients import recipient_masked
from observatory.notifications.services import notification_claim
from observatory.tenancy.models import Project

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def guard_forget(*, project_id: int) -> None:
    """Drop the guard's cached budgets of a project, so its next answer reads the new state."""
    try:
        cache.delete(guard_cache_key(project_id=project_id))
    except Exception:  # an unreachable cache: entries expire after BUDGET_GUARD_CACHE_SECONDS anyway
        logger.warning("could not clear the guard cache of project %s", project_id, exc_info=True)


def _spend_store(*, budget: Budget, spent, period_start: datetime, at: datetime) -> None:
    # Never over a newer figure: two evaluations may finish in either order.
    Budget.objects.filter(Q(spent_at__isnull=True) | Q(spent_at__lte=at), pk=budget.pk).update(
        spent=spent, spent_period_start=period_start, spent_at=at
    )
    budget.spent, budget.spent_period_start, budget.spent_at = spent, period_start, at
    if budget.hard_cap:
        guard_forget(project_id=budget.project_id)


def budget_spend_refresh(*, budget: Budget, now: datetime | None = None) -> None:
    """Record the budget's spend so far this period (what the guard answers from)."""
    now = (now or timezone.now()).astimezone(UTC)
    bounds = period_bounds(period=budget.period, time_zone=budget.project.time_zone, moment=now)
    spend = scope_spend(project=budget.project, scope=budget.scope, value=budget.scope_value, start=bounds.start,
                        end=now, now=now)
    _spend_store(budget=budget, spent=spend.cost, period_start=bounds.start, at=now)


def scope_value_check(*, watch: Watch, before: tuple[str, str] | None = None) -> None:
    """Refuse a scope value no call of the project has ever had: almost always a typo, and a
    budget or rule on it would stay at zero without saying why. Checked when the scope is
    set or changed (`before` is the stored one), not on every edit."""
    if watch.scope == ScopeKind.PROJECT or before == (watch.scope, watch.scope_value):
        return
    if not scope_value_exists(project=watch.project, scope=watch.scope, value=watch.scope_value):
        raise ValidationError({"scope_value": f"No call of this project has {watch.scope} {watch.scope_value!r}. "
                                              "Check the spelling, or send a call with it first."})


def watch_snapshot(*, watch: Watch) -> dict[str, str]:
    """A budget's or rule's editable fields as the audit log shows them. Webhook URLs are
    masked: their path is the channel's password, and the audit log keeps no secrets."""
    values = {}
    for name in watch.EDITABLE:
        value = getattr(watch, name)
        if name == "recipients":
            value = [recipient_masked(recipient) for recipient in value]
        values[name] = "" if value is None else str(value)
    return values


def watch_audit(*, watch: Watch, actor, action: str, before: dict[str, str] | None = None) -> None:
    """Record a budget or rule change: every field when created, the changed ones (old, new)
    when updated, nothing more when deleted."""
    details: dict[str, Any] = {}
    if action.endswith(".create"):
        details = watch_snapshot(watch=watch)
    elif before is not None:
        after = watch_snapshot(watch=watch)
        details = {name: [before[name], after[name]] for name in after if after[name] != before[name]}
    project = watch.project
    audit_record(actor=actor, organization=project.organization, project=project, action=action,
                 target=watch.name, details=details)


def budget_create(*, project: Project, created_by=None, **fields: Any) -> Budget:
    budget = Budget(project=project, created_by=created_by)
    budget.assign(fields)
    scope_value_check(watch=budget)
    with transaction.atomic():
        budget.save()
        watch_audit(watch=budget, actor=created_by, action="budget.create")
    budget_spend_refresh(budget=budget)
    return budget


def watch_update(*, watch: Watch, actor, action: str, fields: dict[str, Any]) -> None:
    """Apply `fields` to a budget or rule, check a changed scope value, and save it together
    with its audit record (the changed fields, old and new)."""
    before = (watch.scope, watch.scope_value)
    snapshot = watch_snapshot(watch=watch)
    watch.assign(fields)
    scope_value_check(watch=watch, before=before)
    with transaction.atomic():
        watch.save()
        watch_audit(watch=watch, actor=actor, action=action, before=snapshot)


def budget_update(*, budget: Budget, actor=None, **fields: Any) -> Budget:
    watch_update(watch=budget, actor=actor, action="budget.update", fields=fields)
    # A new scope or period makes the recorded spend meaningless; an amount or cap changes
    # what the guard answers.
    budget_spend_refresh(budget=budget)
    guard_forget(project_id=budget.project_id)
    return budget


def budget_delete(*, budget: Budget, actor=None) -> None:
    project_id = budget.project_id
    with transaction.atomic():
        watch_audit(watch=budget, actor=actor, action="budget.delete")
        budget.delete()
    guard_forget(project_id=project_id)


@dataclass(frozen=True)
class _Due:
    key: str
    kind: str
    threshold: int | None


def _due(*, budget: Budget, burn: Burn) -> list[_Due]:
    """Notifications this burn calls for, highest threshold first (claimed or not)."""
    prefix = f"budget:{budget.pk}:{budget.period}:{burn.period.key}"
    due = [_Due(f"{prefix}:{threshold}", NotificationKind.BUDGET_THRESHOLD, threshold)
           for threshold in sorted(budget.thresholds, reverse=True) if burn.crossed(threshold)]
    if budget.notify_forecast and burn.forecast_reliable and burn.exhausts_at is not None:
        due.append(_Due(f"{prefix}:forecast", NotificationKind.BUDGET_FORECAST, None))
    return due


def _budget_context(*, budget: Budget, burn: Burn, table_rows: list[tuple[str, int, Any]], headline: str,
                    threshold: int | None) -> dict[str, Any]:
    project, zone = budget.project, budget.project.time_zone
    label = period_label(period=budget.period, bounds=burn.period)
    window_hours = (burn.now - burn.rate_since).total_seconds() / 3600
    if burn.exhausts_at is not None:
        outlook = f"At this rate it runs out on {local_time(burn.exhausts_at, time_zone=zone)}."
    else:
        outlook = f"At this rate the period ends at {usd(burn.projected_spend)} ({percent(burn.projected_share)})."
    facts = [
        ["Spent", usd(burn.spent)],
        ["Budget", f"{usd(burn.amount)} per {budget.period}"],
        ["Used", percent(burn.share)],
        ["Burn rate", f"{usd(burn.rate_per_hour)}/hour over the last {window_hours:.3g} h"],
        ["Projected at period end", f"{usd(burn.projected_spend)} ({percent(burn.projected_share)})"],
        ["Runs out", local_time(burn.exhausts_at, time_zone=zone) if burn.exhausts_at else
         ("already" if burn.exhausted else "not this period")],
        ["Period", f"{label} (ends {local_time(burn.period.end, time_zone=zone)})"],
    ]
    if budget.hard_cap:
        facts.append(["Hard cap", "calls are refused by the guard once the budget is spent"])
    if burn.unpriced_calls:
        facts.append(["Not counted", f"{burn.unpriced_calls:,} calls to models without a known price"])
    return {
        "headline": headline,
        "summary": (f"{project.name} has spent {usd(burn.spent)} of {usd(burn.amount)} ({percent(burn.share)}) "
                    f"on {scope_label(scope=budget.scope, value=budget.scope_value)} in {label}. {outlook}"),
        "facts": facts,
        "table": {"title": "Spend this period by model", "columns": ["Model", "Calls", "Spend"],
                  "rows": [[model, f"{calls:,}", usd(cost)] for model, calls, cost in table_rows]},
        "link": dashboard_link(project_slug=project.slug, section="budgets"),
        "data": {
            "budget_id": budget.pk, "budget": budget.name, "threshold": threshold, "scope": budget.scope,
            "scope_value": budget.scope_value,
            "period": budget.period, "period_start": burn.period.start, "period_end": burn.period.end,
            "amount": str(burn.amount), "spent": str(burn.spent), "share": f"{burn.share:.4f}",
            "rate_per_hour": f"{burn.rate_per_hour:.6f}", "projected_spend": f"{burn.projected_spend:.6f}",
            "exhausts_at": burn.exhausts_at, "hard_cap": budget.hard_cap,
        },
    }


def _subject_and_headline(*, budget: Budget, burn: Burn, due: _Due) -> tuple[str, str]:
    prefix = f"[{budget.project.slug}] Budget \"{budget.name}\""
    if due.kind == NotificationKind.BUDGET_THRESHOLD:
        return (f"{prefix} passed {due.threshold}%: {usd(burn.spent)} of {usd(burn.amount)}",
                f"Budget \"{budget.name}\" has passed {due.threshold}%")
    zone = budget.project.time_zone
    return (f"{prefix} will run out on {local_day(burn.exhausts_at, time_zone=zone)} at this rate",
            f"Budget \"{budget.name}\" is on course to run out on {local_time(burn.exhausts_at, time_zone=zone)}")


@dataclass
class BudgetEvaluation:
    burn: Burn
    notifications: list[Notification] = field(default_factory=list)


def budget_evaluate(*, budget: Budget, now: datetime | None = None) -> BudgetEvaluation:
    """Record the budget's spend and claim the notifications it now calls for: each crossed
    threshold and the forecast, once per period. Only the highest new threshold is sent
    when several are crossed at once, and a forecast that arrives with a threshold is told
    in that threshold's message; the others are recorded as suppressed."""
    burn = budget_burn(budget=budget, now=now)
    _spend_store(budget=budget, spent=burn.spent, period_start=burn.period.start, at=burn.now)
    evaluation = BudgetEvaluation(burn=burn)
    due = _due(budget=budget, burn=burn)
    claimed = set(Notification.objects.filter(project_id=budget.project_id, key__in=[d.key for d in due])
                  .values_list("key", flat=True))
    new = [d for d in due if d.key not in claimed]
    if not new:
        return evaluation
    table = scope_spend_by_model(project=budget.project, scope=budget.scope, value=budget.scope_value,
                                 start=burn.period.start, end=burn.now, now=burn.now)
    top = next((d.threshold for d in due if d.threshold is not None), None)
    sent_threshold: int | None = None
    with transaction.atomic():
        for item in new:
            subject, headline = _subject_and_headline(budget=budget, burn=burn, due=item)
            if item.threshold is not None:
                suppressed = "" if item.threshold == top else f"{top}% was crossed too"
            else:
                suppressed = f"told in the {sent_threshold}% notification" if sent_threshold else ""
            notification = notification_claim(
                project=budget.project, key=item.key, kind=item.kind, subject=subject,
                context=_budget_context(budget=budget, burn=burn, table_rows=table, headline=headline,
                                        threshold=item.threshold),
                recipients=budget.recipients, budget_id=budget.pk, suppressed=suppressed, now=burn.now,
            )
            if notification is None:
                continue
            evaluation.notifications.append(notification)
            if item.threshold is not None and not suppressed:
                sent_threshold = item.threshold
    return evaluation


@dataclass
class EvaluationReport:
    evaluated: int = 0
    failed: int = 0
    notifications: int = 0


def each_isolated(*, items: Iterable[T], action: Callable[[T], R], what: str,
                  time_budget_seconds: float | None = None) -> tuple[list[R], int]:
    """`action` on each item on its own: one that raises is logged and counted, and the others
    go on (one broken budget or project never stops the rest). No new item is started once
    the time budget is spent. Returns the results and the number of failures."""
    started = time.monotonic()
    results: list[R] = []
    failed = 0
    for item in items:
        if time_budget_seconds is not None and time.monotonic() - started > time_budget_seconds:
            break
        try:
            results.append(action(item))
        except Exception:
            failed += 1
            logger.exception("%s %s failed", what, getattr(item, "pk", item))
    return results, failed


def budgets_evaluate(*, now: datetime | None = None, time_budget_seconds: float | None = None) -> EvaluationReport:
    """Evaluate every enabled budget, least recently evaluated first, so that those a time
    budget cut off come first in the next run."""
    budgets = (Budget.objects.filter(enabled=True).select_related("project")
               .order_by(F("spent_at").asc(nulls_first=True), "pk"))
    evaluations, failed = each_isolated(items=budgets, action=lambda budget: budget_evaluate(budget=budget, now=now),
                                        what="evaluating budget", time_budget_seconds=time_budget_seconds)
    return EvaluationReport(evaluated=len(evaluations), failed=failed,
                            notifications=sum(len(evaluation.notifications) for evaluation in evaluations))


def budget_guards_refresh(*, now: datetime | None = None) -> int:
    """Record the spend of every enabled hard-capped budget, so the guard's answers are at
    most BUDGET_GUARD_REFRESH_SECONDS (plus its cache time) behind."""
    budgets = Budget.objects.filter(enabled=True, hard_cap=True).select_related("project").order_by("pk")
    refreshed, _ = each_isolated(items=budgets, action=lambda budget: budget_spend_refresh(budget=budget, now=now),
                                 what="refreshing the spend of budget")
    return len(refreshed)
