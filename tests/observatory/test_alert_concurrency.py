"""Two workers, or a retried job, evaluating or delivering at the same moment: every
threshold, state change and delivery happens once. Real transactions on real connections."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection, transaction

from observatory.alerts.models import AlertRule, AlertRuleChange
from observatory.alerts.services import rule_create, rule_evaluate
from observatory.budgets.models import Budget
from observatory.budgets.services import budget_create, budget_evaluate
from observatory.notifications.models import Delivery, DeliveryStatus, Notification, NotificationKind
from observatory.notifications.services import delivery_attempt, notification_claim
from tests.alerting import inline_jobs, spend, threads_run  # noqa: F401 (fixtures)
from tests.system.topology import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
WORKERS = 6


def test_concurrent_evaluations_of_a_budget_tell_each_threshold_once(project, inline_jobs):
    budget = budget_create(project=project, name="Monthly", amount=Decimal("10.00"), notify_forecast=False,
                           recipients=["owner@acme.test", "finance@acme.test"])
    spend(project, "9.00", datetime.now(UTC) - timedelta(minutes=1))

    def evaluate(_: int) -> int:
        fresh = Budget.objects.select_related("project").get(pk=budget.pk)
        return len(budget_evaluate(budget=fresh).notifications)

    assert sum(threads_run(evaluate, WORKERS)) == 2  # 80 % told, 50 % recorded as crossed too
    assert sorted(Notification.objects.values_list("key", "suppressed")) == [
        (f"budget:{budget.pk}:month:{datetime.now(UTC):%Y-%m}-01:50", "80% was crossed too"),
        (f"budget:{budget.pk}:month:{datetime.now(UTC):%Y-%m}-01:80", ""),
    ]
    assert sorted(m.to[0] for m in mail.outbox) == ["finance@acme.test", "owner@acme.test"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}


def test_a_claim_waits_for_an_uncommitted_one_and_then_claims_nothing(project):
    claimed, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}
    second_pid: list[int] = []

    def claim() -> object:
        return notification_claim(project=project, key="budget:1:month:2026-11-01:80",
                                  kind=NotificationKind.BUDGET_THRESHOLD, subject="80%", context={},
                                  recipients=["owner@acme.test"])

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = claim()
                claimed.set()
                release.wait(60)
        finally:
            connection.close()

    def second() -> None:
        try:
            claimed.wait(60)
            connection.ensure_connection()
            second_pid.append(connection.connection.info.backend_pid)
            results["second"] = claim()
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    try:
        def second_is_waiting() -> bool:
            if not second_pid:
                return False
            with connection.cursor() as cursor:
                cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", second_pid)
                row = cursor.fetchone()
            return bool(row) and row[0] == "Lock"

        # The second insert blocks on the unique index until the first transaction ends.
        wait_until(second_is_waiting, timeout=60, what="the second claim waiting on the first")
    finally:
        release.set()
        for thread in threads:
            thread.join()
    assert results["first"] is not None and results["second"] is None
    assert Notification.objects.count() == 1 and Delivery.objects.count() == 1


def test_concurrent_evaluations_of_a_rule_record_one_state_change(project):
    rule = rule_create(project=project, name="Errors", kind="error_rate", threshold=Decimal(10), window_minutes=10,
                       min_calls=1, recipients=["oncall@acme.test"])
    spend(project, "0.01", datetime.now(UTC) - timedelta(minutes=1), status="error")

    def evaluate(_: int) -> bool:
        fresh = AlertRule.objects.select_related("project").get(pk=rule.pk)
        return rule_evaluate(rule=fresh).change is not None

    assert sum(threads_run(evaluate, WORKERS)) == 1
    assert AlertRuleChange.objects.filter(rule=rule).count() == 1
    assert Notification.objects.filter(rule=rule).count() == 1


def test_concurrent_attempts_send_a_delivery_once(project):
    notification = notification_claim(project=project, key="k", kind=NotificationKind.BUDGET_THRESHOLD,
                                      subject="80%", context={}, recipients=["owner@acme.test"])
    delivery = notification.deliveries.get()
    results = threads_run(lambda _: delivery_attempt(delivery_id=delivery.pk), WORKERS)
    assert results.count(DeliveryStatus.SENT) == 1 and results.count(None) == WORKERS - 1
    assert len(mail.outbox) == 1
