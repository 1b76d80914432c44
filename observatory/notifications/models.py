"""The alert history: what Observatory had to tell (a notification) and each attempt to tell
one recipient (a delivery).

A notification is also the claim that makes alerts happen once: its `key` names the event
("budget 12, November, 80 %"), and (project, key) is unique, so whichever evaluation inserts
the row first owns the event and every other one, concurrent or repeated, inserts nothing.
"""

from __future__ import annotations

from django.db import models

from observatory.tenancy.models import Project


class NotificationKind(models.TextChoices):
    BUDGET_THRESHOLD = "budget_threshold", "Budget threshold crossed"
    BUDGET_FORECAST = "budget_forecast", "Budget forecast to run out"
    RULE_FIRING = "rule_firing", "Alert rule firing"
    RULE_RESOLVED = "rule_resolved", "Alert rule resolved"
    RULE_RENOTIFY = "rule_renotify", "Alert rule still firing"
    SPEND_DIGEST = "spend_digest", "Daily spend digest"


class Notification(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    # What it is about; history outlives the budget or rule it came from.
    budget = models.ForeignKey("budgets.Budget", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule = models.ForeignKey("alerts.AlertRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subject = models.CharField(max_length=300)
    # Everything an email or webhook shows: headline, summary, facts, table, link, data.
    context = models.JSONField(default=dict)
    # Why nobody was told, when nobody was (a higher threshold crossed at the same time).
    suppressed = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="notification_once_per_key")]
        indexes = [models.Index(fields=["project", "-created_at"], name="notification_history_idx")]

    def __str__(self) -> str:
        return self.subject


class Channel(models.TextChoices):
    EMAIL = "email"
    WEBHOOK = "webhook"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed for good"


class Delivery(models.Model):
    """One recipient of a notification, and how telling them went.

    Attempts are claimed with a conditional UPDATE (pending and due, or sending with an expired
    lease): two workers never send the same delivery at once, and a worker that died while
    sending leaves a lease that expires, so the delivery is tried again.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(max_length=2000)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # No attempt before this (the backoff after a failure).
    not_before = models.DateTimeField()
    # When a job to attempt it was last queued; the dispatcher queues it again only if that
    # job never ran (a lost message).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The last failure, kept after a later success so the history shows what went wrong.
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel", "recipient"], name="delivery_once_per_recipient")
        ]
        indexes = [
            models.Index(
                fields=["not_before"], name="delivery_due_idx", condition=models.Q(status__in=["pending", "sending"])
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient}: {self.status}"
