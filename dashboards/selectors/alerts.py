"""The Alerts page: rules with their state and when each last fired, and the alert history
(notifications with their deliveries, and rules' state changes), newest first and bounded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max

from observatory.alerts.models import AlertRule, AlertRuleChange, RuleState
from observatory.alerts.selectors import rules_list
from observatory.notifications.models import Notification
from observatory.notifications.recipients import recipient_masked
from observatory.notifications.selectors import notifications_list
from observatory.tenancy.models import Project

HISTORY_LIMIT = 50


@dataclass(frozen=True)
class RuleRow:
    rule: AlertRule
    last_fired_at: datetime | None
    recipients: list[str]


def rules_with_last_fired(*, project: Project, reveal_recipients: bool) -> list[RuleRow]:
    """The project's rules by name; "last fired" is the last move into firing, which the
    rule row itself does not keep once it has resolved."""
    fired = dict(AlertRuleChange.objects.filter(project=project, to_state=RuleState.FIRING)
                 .values("rule_id").annotate(at=Max("created_at")).values_list("rule_id", "at"))
    return [RuleRow(rule=rule, last_fired_at=fired.get(rule.pk),
                    recipients=rule.recipients if reveal_recipients else [recipient_masked(r) for r in rule.recipients])
            for rule in rules_list(project=project)]


@dataclass(frozen=True)
class SentNotification:
    notification: Notification
    about: str  # the budget's or rule's name as it was when sent: history outlives both
    deliveries: list[dict]


def notifications_recent(*, project: Project, reveal_budget_recipients: bool, reveal_rule_recipients: bool,
                         limit: int = HISTORY_LIMIT) -> list[SentNotification]:
    """What was sent, newest first; webhook URLs masked for those who may not manage what
    sends to them (the same rule as GET /api/v1/alerts)."""
    sent = []
    for notification in notifications_list(project=project, limit=limit):
        data = (notification.context or {}).get("data") or {}
        about_rule = notification.rule_id is not None or "rule_id" in data
        about = data.get("rule") if about_rule else data.get("budget")
        reveal = reveal_rule_recipients if about_rule else reveal_budget_recipients
        deliveries = [{"recipient": d.recipient if reveal else recipient_masked(d.recipient), "channel": d.channel,
                       "status": d.status, "status_label": d.get_status_display(), "attempts": d.attempts,
                       "sent_at": d.sent_at, "last_error": d.last_error}
                      for d in notification.deliveries.all()]
        sent.append(SentNotification(notification=notification, about=about or "", deliveries=deliveries))
    return sent


def rule_changes_recent(*, project: Project, limit: int = HISTORY_LIMIT) -> list[AlertRuleChange]:
    """Every rule's state changes, newest first, told or not (a muted rule still changes)."""
    return list(AlertRuleChange.objects.filter(project=project).select_related("rule")
                .order_by("-created_at", "-pk")[:limit])
