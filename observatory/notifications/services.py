"""Writes of the alert history: claiming a notification once, attempting its deliveries.

Evaluations (budgets, rules, digests) call `notification_claim` inside their transaction; the
deliveries it creates are queued as jobs once that transaction commits, so evaluation never
waits for an SMTP server or a webhook. `delivery_attempt` sends one delivery and records the
result; a failure is tried again after a backoff, up to ALERT_DELIVERY_MAX_ATTEMPTS.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from observatory import telemetry
from observatory.notifications.channels import DeliveryError, email_send, webhook_send
from observatory.notifications.messages import webhook_payload_build
from observatory.notifications.models import Channel, Delivery, DeliveryStatus, Notification
from observatory.notifications.recipients import recipient_channel
from observatory.tenancy.models import Project

logger = logging.getLogger(__name__)

# A queued delivery job that has not run after this long is taken as lost and queued again.
REDISPATCH_AFTER = timedelta(minutes=2)
DISPATCH_BATCH = 500
MAX_BACKOFF = timedelta(hours=1)


def delivery_lease() -> timedelta:
    """How long an attempt owns its delivery: longer than any job may run, so a live attempt
    is never doubled; a worker that died mid-send leaves a lease that runs out."""
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def delivery_backoff(*, attempts: int) -> timedelta:
    """1, 2, 4 ... minutes after the 1st, 2nd, 3rd ... failure, at most an hour."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


_CLAIM = """
INSERT INTO notifications_notification
    (project_id, key, kind, budget_id, rule_id, subject, context, suppressed, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)
ON CONFLICT (project_id, key) DO NOTHING
RETURNING id
"""


def notification_claim(
    *,
    project: Project,
    key: str,
    kind: str,
    subject: str,
    context: dict[str, Any],
    recipients: Sequence[str],
    budget_id: int | None = None,
    rule_id: int | None = None,
    suppressed: str = "",
    now: datetime | None = None,
) -> Notification | None:
    """Record the notification named `key` and one delivery per recipient, unless it exists:
    None then, and nothing is sent. Concurrent claims of one key wait for each other on the
    unique index, and only the first inserts a row."""
    now = (now or timezone.now()).astimezone(UTC)
    # A subject is an email header: a line break from a budget's name would make it unsendable.
    subject = " ".join(subject.split())[:300]
    context_json = json.dumps(context, cls=DjangoJSONEncoder)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM, [project.pk, key, kind, budget_id, rule_id, subject, context_json,
                                suppressed, now])
        row = cursor.fetchone()
        if row is None:
            return None
        notification = Notification(id=row[0], project=project, key=key, kind=kind, budget_id=budget_id,
                                    rule_id=rule_id, subject=subject, context=json.loads(context_json),
                                    suppressed=suppressed, created_at=now)
        if suppressed:
            return notification
        deliveries = Delivery.objects.bulk_create([
            Delivery(project=project, notification=notification, channel=recipient_channel(recipient),
                     recipient=recipient, not_before=now, dispatched_at=now)
            for recipient in recipients
        ])
        ids = [delivery.pk for delivery in deliveries]
        if ids:
            transaction.on_commit(lambda: deliveries_enqueue(delivery_ids=ids))
    return notification


def deliveries_enqueue(*, delivery_ids: Sequence[int]) -> None:
    """Queue a delivery job for each id. A broker that is down costs a delay, not an alert:
    the dispatcher queues what is still pending again after REDISPATCH_AFTER."""
    from observatory.notifications.tasks import notification_deliver

    for delivery_id in delivery_ids:
        try:
            notification_deliver.delay(delivery_id)
        except Exception:  # the broker: any failure to publish
            logger.warning("could not queue delivery %s; the dispatcher will", delivery_id, exc_info=True)
            return


def _due(now: datetime) -> Q:
    waiting = Q(status=DeliveryStatus.PENDING, not_before__lte=now)
    abandoned = Q(status=DeliveryStatus.SENDING, lease_until__lt=now)
    return waiting | abandoned


def deliveries_dispatch(*, now: datetime | None = None) -> list[int]:
    """Queue every delivery that is due and has no job waiting: retries whose backoff is over,
    deliveries whose job was lost, and those a dead worker left half-sent."""
    now = (now or timezone.now()).astimezone(UTC)
    unqueued = Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - REDISPATCH_AFTER)
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(_due(now), unqueued)
            .order_by("not_before")
            .values_list("pk", flat=True)[:DISPATCH_BATCH]
        )
        Delivery.objects.filter(pk__in=ids).update(dispatched_at=now)
        if ids:
            transaction.on_commit(lambda: deliveries_enqueue(delivery_ids=ids))
    return ids


def _deliver(delivery: Delivery) -> None:
    notification = delivery.notification
    if delivery.channel == Channel.EMAIL:
        email_send(to=delivery.recipient, subject=notification.subject, context=notification.context)
    else:
        payload = webhook_payload_build(kind=notification.kind, project=notification.project.slug,
                                        subject=notification.subject, context=notification.context)
        webhook_send(url=delivery.recipient, payload=payload)


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> str | None:
    """Send one delivery if it is due and nobody else is sending it; record the outcome.
    Returns the new status, or None when there was nothing to do (sent, not due, or taken)."""
    now = (now or timezone.now()).astimezone(UTC)
    claimed = Delivery.objects.filter(_due(now), pk=delivery_id).update(
        status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, lease_until=now + delivery_lease(),
        dispatched_at=None,
    )
    if claimed != 1:
        return None
    delivery = Delivery.objects.select_related("notification__project").get(pk=delivery_id)
    mine = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING, attempts=delivery.attempts)
    try:
        _deliver(delivery)
    except Exception as error:  # every failure is recorded; nothing may leave it half-sent
        error_text = (str(error) if isinstance(error, DeliveryError) else f"{type(error).__name__}: {error}")[:2000]
        final = delivery.attempts >= settings.ALERT_DELIVERY_MAX_ATTEMPTS
        status = DeliveryStatus.FAILED if final else DeliveryStatus.PENDING
        mine.update(status=status, not_before=now + delivery_backoff(attempts=delivery.attempts),
                    lease_until=None, last_error=error_text)
        telemetry.ALERT_SEND_FAILURES.labels(channel=delivery.channel).inc()
        logger.warning("%s delivery %s failed (attempt %d): %s", delivery.channel, delivery_id,
                       delivery.attempts, error_text)
        return status
    mine.update(status=DeliveryStatus.SENT, sent_at=timezone.now(), lease_until=None)
    telemetry.ALERT_SENDS.labels(channel=delivery.channel).inc()
    return DeliveryStatus.SENT
