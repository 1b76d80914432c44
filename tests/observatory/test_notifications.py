"""Delivering notifications: real SMTP and webhooks, retries with backoff, the ledger of each
attempt, and a broken channel never holding up evaluation."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from prometheus_client import REGISTRY

from observatory.budgets.models import Budget
from observatory.budgets.services import budget_create, budgets_evaluate
from observatory.notifications.channels import address_allowed
from observatory.notifications.models import Delivery, DeliveryStatus, Notification, NotificationKind
from observatory.notifications.services import (
    deliveries_dispatch,
    delivery_attempt,
    delivery_backoff,
    notification_claim,
)
from tests.alerting import inline_jobs, spend, webhook_receiver  # noqa: F401 (fixtures)
from tests.system.topology import SmtpSink, free_port

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
CONTEXT = {
    "headline": "Budget \"Monthly\" has passed 80%",
    "summary": "Support bot has spent $8.00 of $10.00 (80%).",
    "facts": [["Spent", "$8.00"], ["Budget", "$10.00 per month"]],
    "table": {"title": "Spend this period by model", "columns": ["Model", "Calls", "Spend"],
              "rows": [["gpt-4o", "12", "$6.00"], ["gpt-4o-mini", "300", "$2.00"]]},
    "link": "https://observatory.example.com/p/support-bot/budgets/",
    "data": {"budget_id": 1, "spent": "8.00"},
}


def claim(project, recipients: list[str], key: str = "test:1") -> Notification:
    return notification_claim(project=project, key=key, kind=NotificationKind.BUDGET_THRESHOLD,
                              subject="[support-bot] Budget \"Monthly\" passed 80%: $8.00 of $10.00",
                              context=CONTEXT, recipients=recipients, now=T0)


def counter(name: str, channel: str) -> float:
    return REGISTRY.get_sample_value(f"observatory_{name}_total", {"channel": channel}) or 0


def test_a_key_is_claimed_once(project):
    assert claim(project, ["a@acme.test"]) is not None
    assert claim(project, ["a@acme.test", "b@acme.test"]) is None
    assert Delivery.objects.count() == 1


def test_a_subject_stays_one_header_line(project):
    notification = notification_claim(project=project, key="k", kind=NotificationKind.BUDGET_THRESHOLD,
                                      subject="Budget \"Q4\r\nBcc: someone@else.test\" passed 80%", context={},
                                      recipients=[])
    assert notification.subject == "Budget \"Q4 Bcc: someone@else.test\" passed 80%"


def test_a_webhook_that_fails_is_retried_with_backoff_until_it_answers(project, webhook_receiver):
    receiver = webhook_receiver([500, 503, 200])
    delivery = claim(project, [receiver.url]).deliveries.get()
    sends, failures = counter("alert_sends", "webhook"), counter("alert_send_failures", "webhook")

    assert delivery_attempt(delivery_id=delivery.pk, now=T0) == DeliveryStatus.PENDING
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_error) == (1, "HTTP 500 from the webhook")
    assert delivery.not_before == T0 + timedelta(minutes=1)
    assert delivery_attempt(delivery_id=delivery.pk, now=T0 + timedelta(seconds=59)) is None  # not due yet
    assert delivery_attempt(delivery_id=delivery.pk, now=T0 + timedelta(minutes=1)) == DeliveryStatus.PENDING
    delivery.refresh_from_db()
    assert delivery.not_before == T0 + timedelta(minutes=3)  # 2 minutes after the 2nd failure
    assert delivery_attempt(delivery_id=delivery.pk, now=T0 + timedelta(minutes=3)) == DeliveryStatus.SENT
    assert delivery_attempt(delivery_id=delivery.pk, now=T0 + timedelta(hours=1)) is None  # sent stays sent

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 3)
    assert delivery.last_error == "HTTP 503 from the webhook" and delivery.sent_at is not None
    assert len(receiver.bodies) == 3
    assert (counter("alert_sends", "webhook"), counter("alert_send_failures", "webhook")) == (sends + 1, failures + 2)
    payload = json.loads(receiver.bodies[-1])
    assert payload["text"].startswith("[support-bot] Budget \"Monthly\" passed 80%")
    assert payload["blocks"][0]["text"]["text"].startswith("*Budget \"Monthly\" has passed 80%*")
    assert {"type": "mrkdwn", "text": "*Spent*\n$8.00"} in payload["blocks"][1]["fields"]
    assert "gpt-4o | 12 | $6.00" in payload["blocks"][2]["text"]["text"]
    assert payload["observatory"] == {"kind": "budget_threshold", "project": "support-bot",
                                      "subject": payload["text"].split(" <")[0], "link": CONTEXT["link"],
                                      "budget_id": 1, "spent": "8.00"}


@pytest.mark.parametrize("address, allowed", [
    ("93.184.215.14", True), ("2606:4700::1111", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.9", False), ("192.168.1.20", False),
    ("169.254.169.254", False),  # a cloud's metadata service
    ("0.0.0.0", False), ("::1", False), ("fd00::5", False), ("fe80::1%eth0", False),
    ("::ffff:10.0.0.1", False), ("::ffff:127.0.0.1", False), ("224.0.0.1", False),
])
def test_webhooks_reach_public_addresses_only(settings, address, allowed):
    settings.ALERT_WEBHOOK_ALLOWED_NETWORKS = []
    assert address_allowed(address) is allowed


def test_networks_can_be_allowed_for_internal_webhooks(settings):
    settings.ALERT_WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    assert address_allowed("10.1.2.3") and address_allowed("::ffff:10.0.0.1")
    assert not address_allowed("192.168.1.20")


def test_a_webhook_to_the_deployments_own_network_is_refused_and_never_sent(project, webhook_receiver, settings):
    receiver = webhook_receiver([200])
    settings.ALERT_WEBHOOK_ALLOWED_NETWORKS = []  # the receiver listens on loopback
    delivery = claim(project, [receiver.url]).deliveries.get()
    assert delivery_attempt(delivery_id=delivery.pk, now=T0) == DeliveryStatus.PENDING
    delivery.refresh_from_db()
    refusal = "127.0.0.1, which webhooks may not reach (allow it with ALERT_WEBHOOK_ALLOWED_NETWORKS)"
    assert refusal in delivery.last_error
    assert receiver.bodies == []


def test_a_delivery_gives_up_after_the_last_attempt(project, settings):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 2
    settings.ALERT_WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]  # unreachable, not refused
    delivery = claim(project, [f"http://127.0.0.1:{free_port()}/nobody-listens"]).deliveries.get()
    assert delivery_attempt(delivery_id=delivery.pk, now=T0) == DeliveryStatus.PENDING
    assert delivery_attempt(delivery_id=delivery.pk, now=T0 + timedelta(minutes=1)) == DeliveryStatus.FAILED
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_error.startswith("webhook unreachable")
    assert deliveries_dispatch(now=T0 + timedelta(days=1)) == []  # failed for good: never queued again


def test_backoff_doubles_up_to_an_hour():
    assert [delivery_backoff(attempts=n) for n in (1, 2, 3, 6, 7, 20)] == [
        timedelta(minutes=m) for m in (1, 2, 4, 32, 60, 60)]


def test_a_delivery_left_half_sent_by_a_dead_worker_is_tried_again_after_its_lease(project, settings):
    delivery = claim(project, ["owner@acme.test"]).deliveries.get()
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.SENDING, attempts=1,
                                                   lease_until=T0 + timedelta(minutes=5), dispatched_at=None)
    assert delivery_attempt(delivery_id=delivery.pk, now=T0 + timedelta(minutes=4)) is None  # still its lease
    assert deliveries_dispatch(now=T0 + timedelta(minutes=4)) == []
    assert deliveries_dispatch(now=T0 + timedelta(minutes=6)) == [delivery.pk]
    assert deliveries_dispatch(now=T0 + timedelta(minutes=7)) == []  # queued already: not twice
    assert delivery_attempt(delivery_id=delivery.pk, now=T0 + timedelta(minutes=6)) == DeliveryStatus.SENT
    assert [m.to for m in mail.outbox] == [["owner@acme.test"]]


def test_the_dispatcher_queues_due_retries_and_the_job_sends_them(project, inline_jobs,
                                                                  django_capture_on_commit_callbacks):
    delivery = claim(project, ["owner@acme.test"]).deliveries.get()
    Delivery.objects.filter(pk=delivery.pk).update(not_before=T0 - timedelta(minutes=1), dispatched_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_dispatch() == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT and len(mail.outbox) == 1


def test_an_email_travels_over_smtp_with_text_html_numbers_and_a_link(project, settings):
    sink = SmtpSink()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.DEFAULT_FROM_EMAIL = "Observatory <alerts@acme.test>"
        settings.SITE_URL = "https://observatory.acme.test"
        budget = budget_create(project=project, name="Monthly", amount=Decimal("10.00"),
                               recipients=["owner@acme.test"], notify_forecast=False)
        spend(project, "8.50", datetime.now(UTC) - timedelta(minutes=2), model="gpt-4o")
        budgets_evaluate()
        delivery = Delivery.objects.get(notification__budget=budget)
        assert delivery_attempt(delivery_id=delivery.pk) == DeliveryStatus.SENT
        message = sink.wait_for(lambda m: m["To"] == "owner@acme.test", what="the budget email", timeout=10)
    finally:
        sink.stop()
    assert message["Subject"] == "[support-bot] Budget \"Monthly\" passed 80%: $8.50 of $10.00"
    assert message["From"] == "Observatory <alerts@acme.test>"
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in message.walk()
             if not part.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    text, html = parts["text/plain"], parts["text/html"]
    assert "Spent: $8.50" in text and "Used: 85%" in text and "gpt-4o  |  1  |  $8.50" in text
    assert "Open in Observatory: https://observatory.acme.test/p/support-bot/budgets/" in text
    assert 'href="https://observatory.acme.test/p/support-bot/budgets/"' in html
    assert "<td style=\"text-align:left;border-bottom:1px solid #eaeef2;padding:4px 8px\">gpt-4o</td>" in html
    assert "Budget &quot;Monthly&quot; has passed 80%" in html  # escaped in HTML


def test_a_broken_smtp_server_never_stops_other_budgets_from_being_evaluated(
        project, settings, inline_jobs, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens there
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    failures = counter("alert_send_failures", "email")
    budgets = [budget_create(project=project, name=f"Budget {n}", amount=Decimal("1.00"), thresholds=[50],
                             recipients=[f"owner{n}@acme.test"], notify_forecast=False) for n in range(3)]
    spend(project, "0.75", datetime.now(UTC) - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        report = budgets_evaluate()
    assert (report.evaluated, report.notifications, report.failed) == (3, 3, 0)
    deliveries = Delivery.objects.filter(notification__budget__in=budgets)
    assert [(d.status, d.attempts) for d in deliveries] == [(DeliveryStatus.PENDING, 1)] * 3
    assert all(d.last_error.startswith("ConnectionRefusedError") for d in deliveries)
    assert counter("alert_send_failures", "email") == failures + 3
    assert Budget.objects.filter(pk__in=[b.pk for b in budgets], spent=Decimal("0.75")).count() == 3


def test_evaluations_retries_and_digests_are_scheduled_and_their_tasks_exist(settings):
    from observatory.celery import app

    app.loader.import_default_modules()  # what a worker does at start: autodiscovers tasks.py
    schedule = app.conf.beat_schedule
    expected = {
        "budgets-evaluate": "observatory.budgets.tasks.budgets_evaluate",
        "alert-rules-evaluate": "observatory.alerts.tasks.rules_evaluate",
        "budget-guards-refresh": "observatory.budgets.tasks.budget_guards_refresh",
        "notifications-dispatch": "observatory.notifications.tasks.notifications_dispatch",
        "spend-digests-send": "observatory.budgets.tasks.spend_digests_send",
    }
    for name, task in expected.items():
        assert schedule[name]["task"] == task and task in app.tasks, name
    assert schedule["budget-guards-refresh"]["schedule"] == settings.BUDGET_GUARD_REFRESH_SECONDS
    for every_minute in ("budgets-evaluate", "alert-rules-evaluate", "notifications-dispatch"):
        assert schedule[every_minute]["schedule"].minute == set(range(60)), every_minute
    assert "observatory.notifications.tasks.notification_deliver" in app.tasks
