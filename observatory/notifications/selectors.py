"""Reads of the alert history."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from observatory.notifications.models import Delivery, Notification
from observatory.tenancy.models import Project


def notifications_list(
    *,
    project: Project,
    budget_id: int | None = None,
    rule_id: int | None = None,
    kind: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Notification]:
    """The project's notifications, newest first, each with its deliveries; `before_id` pages."""
    notifications: QuerySet[Notification] = Notification.objects.filter(project=project)
    if budget_id is not None:
        notifications = notifications.filter(budget_id=budget_id)
    if rule_id is not None:
        notifications = notifications.filter(rule_id=rule_id)
    if kind is not None:
        notifications = notifications.filter(kind=kind)
    if before_id is not None:
        notifications = notifications.filter(pk__lt=before_id)
    deliveries = Prefetch("deliveries", queryset=Delivery.objects.order_by("pk"))
    return list(notifications.order_by("-pk").prefetch_related(deliveries)[:limit])
