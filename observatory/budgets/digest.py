"""The daily spend digest: yesterday's spend, the month so far and every budget's standing,
emailed to the members who asked for it, once per project and day, after SPEND_DIGEST_HOUR
in the project's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from observatory.budgets.models import Budget, DigestSubscription
from observatory.budgets.periods import Period, period_bounds, period_label
from observatory.budgets.scopes import ScopeKind
from observatory.budgets.selectors import budget_burn, scope_spend, scope_spend_by_model
from observatory.budgets.services import each_isolated
from observatory.notifications.formatting import dashboard_link, percent, usd
from observatory.notifications.models import Notification, NotificationKind
from observatory.notifications.services import notification_claim
from observatory.tenancy.models import Membership, Project
from observatory.tenancy.roles import Capability, role_can

def digest_recipients(*, project: Project) -> list[str]:
    """Emails of the subscribed members who may still see costs."""
    subscribed = DigestSubscription.objects.filter(project=project).values_list("user_id", flat=True)
    memberships = (Membership.objects.filter(organization_id=project.organization_id, user_id__in=subscribed)
                   .select_related("user").order_by("user__email"))
    return [m.user.email for m in memberships if role_can(m.role, Capability.VIEW_COSTS)]


def spend_digest_send(*, project: Project, now: datetime | None = None) -> Notification | None:
    """Claim and send the digest of the project's previous local day, if it is due."""
    now = (now or timezone.now()).astimezone(UTC)
    zone = project.time_zone
    today = period_bounds(period=Period.DAY, time_zone=zone, moment=now)
    if now.astimezone(ZoneInfo(zone)).hour < settings.SPEND_DIGEST_HOUR:
        return None
    yesterday = period_bounds(period=Period.DAY, time_zone=zone, moment=today.start - timedelta(microseconds=1))
    key = f"digest:{yesterday.key}"
    recipients = digest_recipients(project=project)
    if not recipients or Notification.objects.filter(project=project, key=key).exists():
        return None
    whole = {"project": project, "scope": ScopeKind.PROJECT, "value": "", "now": now}
    spent = scope_spend(start=yesterday.start, end=yesterday.end, **whole)
    month = period_bounds(period=Period.MONTH, time_zone=zone, moment=now)
    month_to_date = scope_spend(start=month.start, end=now, **whole)
    by_model = scope_spend_by_model(start=yesterday.start, end=yesterday.end, limit=8, **whole)
    facts = [["Yesterday", usd(spent.cost)], [f"{period_label(period=Period.MONTH, bounds=month)} so far",
                                               usd(month_to_date.cost)]]
    budgets = []
    for budget in Budget.objects.filter(project=project, enabled=True).order_by("name"):
        burn = budget_burn(budget=budget, now=now)
        facts.append([f"Budget \"{budget.name}\"", f"{usd(burn.spent)} of {usd(burn.amount)} ({percent(burn.share)}), "
                                                   f"projected {usd(burn.projected_spend)}"])
        budgets.append({"budget_id": budget.pk, "spent": str(burn.spent), "amount": str(burn.amount),
                        "projected_spend": f"{burn.projected_spend:.6f}"})
    day = period_label(period=Period.DAY, bounds=yesterday)
    context = {
        "headline": f"{project.name}: {usd(spent.cost)} spent on {day}",
        "summary": f"{spent.calls:,} model calls cost {usd(spent.cost)} on {day}; "
                   f"{usd(month_to_date.cost)} so far this month.",
        "facts": facts,
        "table": {"title": "Yesterday by model", "columns": ["Model", "Calls", "Spend"],
                  "rows": [[model, f"{calls:,}", usd(cost)] for model, calls, cost in by_model]},
        "link": dashboard_link(project_slug=project.slug, section="budgets"),
        "data": {"day": yesterday.key, "spent": str(spent.cost), "calls": spent.calls,
                 "month_to_date": str(month_to_date.cost), "budgets": budgets},
    }
    return notification_claim(project=project, key=key, kind=NotificationKind.SPEND_DIGEST,
                              subject=f"[{project.slug}] Spend on {day}: {usd(spent.cost)}", context=context,
                              recipients=recipients, now=now)


def spend_digests_send(*, now: datetime | None = None) -> int:
    """Send every due digest; one project's failure does not stop the others."""
    project_ids = DigestSubscription.objects.values_list("project_id", flat=True).distinct()
    digests, _ = each_isolated(items=Project.objects.filter(pk__in=project_ids).order_by("pk"),
                               action=lambda project: spend_digest_send(project=project, now=now),
                               what="the spend digest of project")
    return sum(digest is not None for digest in digests)


def digest_subscribe(*, project: Project, user, subscribed: bool) -> bool:
    if subscribed:
        DigestSubscription.objects.get_or_create(project=project, user=user)
    else:
        DigestSubscription.objects.filter(project=project, user=user).delete()
    return subscribed
