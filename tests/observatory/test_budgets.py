"""Budgets: spend and burn from the metrics engine, thresholds crossed exactly once per period,
forecasts, scopes, and the ledger of notifications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from observatory.budgets.models import Budget
from observatory.budgets.scopes import ScopeKind
from observatory.budgets.selectors import (
    budget_burn,
    burn_forecast,
    scope_spend,
    scope_spend_by_model,
    scope_value_exists,
)
from observatory.budgets.services import budget_create, budget_evaluate, budget_update, budgets_evaluate
from observatory.notifications.models import Channel, Delivery, DeliveryStatus, Notification, NotificationKind
from observatory.tenancy.models import Project
from tests.alerting import spend
from tests.metrics_helpers import roll_up

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def evaluate(budget: Budget, now: datetime = NOW):
    return budget_evaluate(budget=Budget.objects.select_related("project").get(pk=budget.pk), now=now)


def claimed(project) -> list[str]:
    return list(Notification.objects.filter(project=project).order_by("pk").values_list("key", flat=True))


def monthly(project, amount: str = "10.00", **fields) -> Budget:
    fields.setdefault("recipients", ["owner@acme.test"])
    fields.setdefault("notify_forecast", False)
    return budget_create(project=project, name="Monthly", amount=Decimal(amount), **fields)


def test_each_threshold_is_crossed_at_exactly_its_share_and_told_once(project):
    budget = monthly(project)
    spend(project, "4.99", NOW - timedelta(days=3))
    assert evaluate(budget).notifications == []

    spend(project, "0.01", NOW - timedelta(hours=1))  # exactly $5.00: 50 %
    [fifty] = evaluate(budget).notifications
    assert fifty.key == f"budget:{budget.pk}:month:2026-11-01:50"
    assert fifty.kind == NotificationKind.BUDGET_THRESHOLD and fifty.suppressed == ""
    assert "passed 50%" in fifty.subject and "$5.00 of $10.00" in fifty.subject
    assert evaluate(budget).notifications == []  # the same spend again: nothing new

    roll_up(project, today=NOW.date())  # from rollups now, not raw calls: the same sums
    spend(project, "2.99", NOW - timedelta(minutes=30))
    assert evaluate(budget).notifications == []  # 79.9 %
    spend(project, "0.01", NOW - timedelta(minutes=20))
    [eighty] = evaluate(budget).notifications
    assert eighty.key.endswith(":80")
    spend(project, "2.00", NOW - timedelta(minutes=10))
    result = evaluate(budget)
    [hundred] = result.notifications
    assert hundred.key.endswith(":100") and result.burn.exhausted and result.burn.spent == Decimal("10.00")
    assert evaluate(budget, now=NOW + timedelta(minutes=5)).notifications == []
    assert claimed(project) == [f"budget:{budget.pk}:month:2026-11-01:{t}" for t in (50, 80, 100)]
    assert Delivery.objects.filter(notification__project=project).count() == 3


def test_several_thresholds_crossed_at_once_send_only_the_highest(project):
    budget = monthly(project, recipients=["owner@acme.test", "https://hooks.example.com/services/T1/B2/xyz"])
    spend(project, "8.50", NOW - timedelta(hours=1))
    notifications = evaluate(budget).notifications
    by_threshold = {n.key.rsplit(":", 1)[1]: n for n in notifications}
    assert set(by_threshold) == {"50", "80"}
    assert by_threshold["80"].suppressed == ""
    assert by_threshold["50"].suppressed == "80% was crossed too"
    assert not by_threshold["50"].deliveries.exists()
    channels = dict(by_threshold["80"].deliveries.values_list("recipient", "channel"))
    assert channels == {"owner@acme.test": Channel.EMAIL,
                        "https://hooks.example.com/services/T1/B2/xyz": Channel.WEBHOOK}


def test_a_threshold_added_below_one_already_told_is_recorded_but_not_sent(project):
    budget = monthly(project, thresholds=[80])
    spend(project, "8.50", NOW - timedelta(hours=1))
    assert len(evaluate(budget).notifications) == 1
    budget_update(budget=budget, thresholds=[60, 80])
    [sixty] = evaluate(budget).notifications
    assert sixty.key.endswith(":60") and sixty.suppressed == "80% was crossed too"


def test_a_new_period_starts_clean_in_the_projects_time_zone(project):
    Project.objects.filter(pk=project.pk).update(time_zone="Asia/Tokyo")
    budget = budget_create(project=Project.objects.get(pk=project.pk), name="Daily", period="day",
                           amount=Decimal("1.00"), thresholds=[80], recipients=["owner@acme.test"],
                           notify_forecast=False)
    # 20 Nov in Tokyo runs from 19 Nov 15:00 UTC to 20 Nov 15:00 UTC.
    spend(project, "0.90", datetime(2026, 11, 20, 14, 30, tzinfo=UTC))
    [first] = evaluate(budget, now=datetime(2026, 11, 20, 14, 50, tzinfo=UTC)).notifications
    assert first.key == f"budget:{budget.pk}:day:2026-11-20:80"

    next_day = evaluate(budget, now=datetime(2026, 11, 20, 15, 10, tzinfo=UTC))  # 00:10 on the 21st in Tokyo
    assert next_day.notifications == [] and next_day.burn.spent == 0
    spend(project, "0.85", datetime(2026, 11, 20, 15, 20, tzinfo=UTC))
    [second] = evaluate(budget, now=datetime(2026, 11, 20, 15, 30, tzinfo=UTC)).notifications
    assert second.key == f"budget:{budget.pk}:day:2026-11-21:80"


def test_a_25_hour_day_counts_all_its_hours_and_nothing_of_its_neighbours(project):
    Project.objects.filter(pk=project.pk).update(time_zone="Europe/Paris")
    budget = budget_create(project=Project.objects.get(pk=project.pk), name="Daily", period="day",
                           amount=Decimal("1.00"), thresholds=[100], notify_forecast=False)
    spend(project, "5.00", datetime(2026, 10, 24, 21, 30, tzinfo=UTC))  # 23:30 on the 24th in Paris
    spend(project, "0.60", datetime(2026, 10, 24, 22, 30, tzinfo=UTC))  # 00:30 CEST on the 25th
    spend(project, "0.40", datetime(2026, 10, 25, 22, 30, tzinfo=UTC))  # 23:30 CET: the day's 25th hour
    spend(project, "7.00", datetime(2026, 10, 25, 23, 30, tzinfo=UTC))  # 00:30 on the 26th
    late = evaluate(budget, now=datetime(2026, 10, 25, 22, 45, tzinfo=UTC))
    assert late.burn.spent == Decimal("1.00")
    assert late.burn.period.end - late.burn.period.start == timedelta(hours=25)
    assert [n.key for n in late.notifications] == [f"budget:{budget.pk}:day:2026-10-25:100"]
    after = evaluate(budget, now=datetime(2026, 10, 25, 23, 45, tzinfo=UTC))
    assert after.burn.spent == Decimal("7.00")
    assert [n.key for n in after.notifications] == [f"budget:{budget.pk}:day:2026-10-26:100"]


def test_forecast_maths():
    now = datetime(2026, 11, 10, tzinfo=UTC)
    end = datetime(2026, 12, 1, tzinfo=UTC)

    def at_rate(rate: str, spent: int = 42):
        return burn_forecast(spent=Decimal(spent), amount=Decimal(100), rate_per_hour=Decimal(rate), now=now,
                             period_end=end)

    projected, exhausts_at = at_rate("0.5")
    assert projected == Decimal(42) + Decimal("0.5") * 504  # 21 days left
    assert exhausts_at == now + timedelta(hours=116)
    assert at_rate("0.1") == (Decimal("92.4"), None)  # 42 + 50.4: not this period
    assert at_rate("0") == (Decimal(42), None)
    assert at_rate("1", spent=100)[1] is None  # already spent
    # A rate so small that running out would lie beyond year 9999: no date, no error.
    assert at_rate("0.000000000001")[1] is None


def test_burn_rate_is_the_last_day_of_spend_and_projects_to_the_period_end(project):
    budget = monthly(project, amount="100.00", notify_forecast=True)
    now = datetime(2026, 11, 10, tzinfo=UTC)
    spend(project, "30.00", datetime(2026, 11, 2, 12, tzinfo=UTC))
    spend(project, "12.00", datetime(2026, 11, 9, 12, tzinfo=UTC))  # within the last 24 hours
    burn = budget_burn(budget=budget, now=now)
    assert (burn.spent, burn.share, burn.remaining) == (Decimal("42.00"), Decimal("0.42"), Decimal("58.00"))
    assert burn.rate_per_hour == Decimal("0.5") and burn.rate_since == now - timedelta(hours=24)
    assert burn.projected_spend == Decimal("294.00")
    assert burn.exhausts_at == datetime(2026, 11, 14, 20, tzinfo=UTC)
    [told] = evaluate(budget, now=now).notifications
    assert told.kind == NotificationKind.BUDGET_FORECAST and told.key.endswith(":forecast")
    assert "will run out on Sat 14 Nov" in told.subject
    assert told.context["data"]["exhausts_at"] == "2026-11-14T20:00:00Z"
    assert evaluate(budget, now=now + timedelta(hours=1)).notifications == []  # once per period


def test_no_forecast_from_the_first_hours_of_a_period(project):
    budget = monthly(project, amount="100.00", notify_forecast=True)
    spend(project, "60.00", datetime(2026, 12, 1, 3, tzinfo=UTC))
    result = evaluate(budget, now=datetime(2026, 12, 1, 5, tzinfo=UTC))
    assert result.burn.exhausts_at is not None and not result.burn.forecast_reliable
    assert [n.kind for n in result.notifications] == [NotificationKind.BUDGET_THRESHOLD]


def test_a_forecast_that_comes_with_a_threshold_is_told_in_that_message(project):
    budget = monthly(project, amount="100.00", notify_forecast=True)
    spend(project, "55.00", NOW - timedelta(hours=2))
    notifications = {n.kind: n for n in evaluate(budget).notifications}
    assert notifications[NotificationKind.BUDGET_THRESHOLD].suppressed == ""
    assert notifications[NotificationKind.BUDGET_FORECAST].suppressed == "told in the 50% notification"
    facts = dict(notifications[NotificationKind.BUDGET_THRESHOLD].context["facts"])
    assert facts["Runs out"] == "Sat 21 Nov 2026, 07:38 UTC"  # $45 left at $55 per 24 hours


def test_scopes_count_only_their_calls(project):
    at = NOW - timedelta(hours=1)
    spend(project, "1.00", at, model="gpt-4o", user_id="u1", tags=["batch", "eu"])
    spend(project, "2.00", at, model="gpt-4o-mini", user_id="u2", tags=["eu"], feature="chat")
    spend(project, "4.00", at, model="gpt-4o", user_id="u1", feature="chat", environment="prod")
    window = {"project": project, "start": NOW - timedelta(days=1), "end": NOW, "now": NOW}
    cost = {scope: scope_spend(scope=scope, value=value, **window).cost for scope, value in [
        (ScopeKind.PROJECT, ""), (ScopeKind.MODEL, "gpt-4o"), (ScopeKind.FEATURE, "chat"), (ScopeKind.USER, "u1"),
        (ScopeKind.TAG, "eu"), (ScopeKind.TAG, "batch"), (ScopeKind.ENVIRONMENT, "prod"),
        (ScopeKind.PROVIDER, "openai"),
    ]}
    assert cost == {ScopeKind.PROJECT: 7, ScopeKind.MODEL: 5, ScopeKind.FEATURE: 6, ScopeKind.USER: 5,
                    ScopeKind.TAG: 1, ScopeKind.ENVIRONMENT: 4, ScopeKind.PROVIDER: 7}
    assert scope_spend(scope=ScopeKind.TAG, value="eu", **window).cost == Decimal("3.00")
    assert scope_spend_by_model(scope=ScopeKind.USER, value="u1", **window) == [("gpt-4o", 2, Decimal("5.00"))]
    assert scope_spend_by_model(scope=ScopeKind.PROJECT, value="", **window)[0] == ("gpt-4o", 2, Decimal("5.00"))


def test_a_scope_exists_only_once_a_call_has_used_it(project):
    spend(project, "1.00", datetime.now(UTC) - timedelta(minutes=5), model="gpt-4o", user_id="u1", tags=["batch"])
    assert scope_value_exists(project=project, scope=ScopeKind.MODEL, value="gpt-4o")
    assert scope_value_exists(project=project, scope=ScopeKind.USER, value="u1")
    assert scope_value_exists(project=project, scope=ScopeKind.TAG, value="batch")
    assert not scope_value_exists(project=project, scope=ScopeKind.MODEL, value="gpt-40")
    assert not scope_value_exists(project=project, scope=ScopeKind.TAG, value="nightly")
    assert not scope_value_exists(project=project, scope=ScopeKind.FEATURE, value="chat")


def test_invalid_budgets_are_refused_by_the_model(project):
    with pytest.raises(ValidationError) as error:
        budget_create(project=project, name="x", amount=Decimal("0"), thresholds=[0, 1001],
                      recipients=["not an address"])
    assert set(error.value.message_dict) == {"amount", "thresholds", "recipients"}


def test_the_ledger_keeps_what_was_said_and_to_whom(project):
    budget = monthly(project, recipients=["owner@acme.test", "finance@acme.test"])
    spend(project, "8.00", NOW - timedelta(hours=1), model="gpt-4o")
    notification = evaluate(budget).notifications[0]
    assert notification.budget_id == budget.pk and notification.project_id == project.pk
    context = notification.context
    assert context["link"].endswith("/p/support-bot/budgets/")
    assert context["table"]["rows"] == [["gpt-4o", "1", "$8.00"]]
    data = context["data"]
    assert (data["spent"], data["threshold"], data["share"]) == ("8.000000000000", 80, "0.8000")
    deliveries = Delivery.objects.filter(notification=notification).order_by("recipient")
    assert [(d.recipient, d.status, d.attempts) for d in deliveries] == [
        ("finance@acme.test", DeliveryStatus.PENDING, 0), ("owner@acme.test", DeliveryStatus.PENDING, 0)]


def test_one_broken_budget_does_not_stop_the_others(project, organization):
    from observatory.tenancy.services import project_create

    broken_project = project_create(organization=organization, name="Broken", slug="broken")
    broken = budget_create(project=broken_project, name="Broken", amount=Decimal("1.00"))
    Project.objects.filter(pk=broken_project.pk).update(time_zone="Not/A_Zone")  # as if edited around validation
    budget = monthly(project)
    spend(project, "9.00", datetime.now(UTC) - timedelta(minutes=1))
    report = budgets_evaluate()
    assert (report.evaluated, report.failed) == (1, 1)
    assert Notification.objects.filter(budget=budget).exists()
    assert not Notification.objects.filter(budget=broken).exists()
