"""Alert rules: what each kind measures over its window, and OK → FIRING → RESOLVED with
notifications on transitions only, re-notification and muting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from observatory.alerts.models import AlertRule, RuleState
from observatory.alerts.services import rule_create, rule_evaluate, rule_update
from observatory.calls.services import calls_write
from observatory.notifications.models import Notification, NotificationKind
from tests.alerting import spend
from tests.records import record

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def make_rule(project, **fields) -> AlertRule:
    fields.setdefault("recipients", ["oncall@acme.test"])
    return rule_create(project=project, name=fields.pop("name", "Rule"), **fields)


def evaluate(rule: AlertRule, now: datetime):
    return rule_evaluate(rule=AlertRule.objects.select_related("project").get(pk=rule.pk), now=now)


def calls(project, at: datetime, count: int, **fields) -> None:
    calls_write(project=project, records=[record(start_time=at + timedelta(seconds=i), **fields) for i in range(count)])


def transitions(rule: AlertRule) -> list[tuple[str, str]]:
    return list(rule.changes.order_by("created_at").values_list("from_state", "to_state"))


def kinds(rule: AlertRule) -> list[str]:
    return list(Notification.objects.filter(rule=rule).order_by("pk").values_list("kind", flat=True))


def test_a_rule_tells_on_each_transition_and_never_in_between(project):
    rule = make_rule(project, kind="error_rate", threshold=Decimal(20), window_minutes=10, min_calls=5)
    calls(project, NOW - timedelta(minutes=5), 7)
    calls(project, NOW - timedelta(minutes=4), 3, status="error")
    fired = evaluate(rule, NOW)
    assert fired.observation.value == Decimal("30") and fired.change.to_state == RuleState.FIRING
    assert fired.notification.kind == NotificationKind.RULE_FIRING
    assert "Error rate over the last 10 min: 30.0% of 10 calls" in fired.notification.context["summary"]
    assert evaluate(rule, NOW + timedelta(minutes=1)).notification is None  # still firing: quiet

    later = NOW + timedelta(minutes=20)
    calls(project, later - timedelta(minutes=2), 10)
    resolved = evaluate(rule, later)
    assert resolved.change.to_state == RuleState.RESOLVED and resolved.observation.value == 0
    assert evaluate(rule, later + timedelta(minutes=1)).change is None

    calls(project, later + timedelta(minutes=2), 5, status="error")
    again = evaluate(rule, later + timedelta(minutes=3))
    assert again.change.from_state == RuleState.RESOLVED and again.change.to_state == RuleState.FIRING
    assert transitions(rule) == [("ok", "firing"), ("firing", "resolved"), ("resolved", "firing")]
    assert kinds(rule) == ["rule_firing", "rule_resolved", "rule_firing"]
    stored = AlertRule.objects.get(pk=rule.pk)
    assert stored.state == RuleState.FIRING and stored.state_changed_at == later + timedelta(minutes=3)


def test_too_few_calls_never_breach_a_rate(project):
    rule = make_rule(project, kind="error_rate", threshold=Decimal(20), window_minutes=10, min_calls=5)
    calls(project, NOW - timedelta(minutes=5), 2, status="error")
    result = evaluate(rule, NOW)
    assert result.observation.value == 100 and not result.observation.breached and result.change is None


def test_a_firing_rule_is_told_again_after_the_renotify_interval(project):
    rule = make_rule(project, kind="error_rate", threshold=Decimal(20), window_minutes=60, min_calls=1,
                     renotify_minutes=30)
    calls(project, NOW - timedelta(minutes=5), 3, status="error")
    assert evaluate(rule, NOW).notification.kind == NotificationKind.RULE_FIRING
    assert evaluate(rule, NOW + timedelta(minutes=10)).notification is None
    reminder = evaluate(rule, NOW + timedelta(minutes=31)).notification
    assert reminder.kind == NotificationKind.RULE_RENOTIFY and "still firing" in reminder.subject
    assert evaluate(rule, NOW + timedelta(minutes=40)).notification is None
    assert kinds(rule) == ["rule_firing", "rule_renotify"]
    assert transitions(rule) == [("ok", "firing")]  # a reminder is not a state change


def test_a_muted_rule_records_its_changes_and_tells_nobody(project):
    rule = make_rule(project, kind="error_rate", threshold=Decimal(20), window_minutes=60, min_calls=1,
                     renotify_minutes=30, muted_until=NOW + timedelta(hours=1))
    calls(project, NOW - timedelta(minutes=5), 3, status="error")
    fired = evaluate(rule, NOW)
    assert fired.change.to_state == RuleState.FIRING and not fired.change.notified and fired.notification is None
    assert evaluate(rule, NOW + timedelta(minutes=45)).notification is None  # still muted
    rule_update(rule=AlertRule.objects.get(pk=rule.pk), muted_until=None)
    assert evaluate(rule, NOW + timedelta(minutes=50)).notification.kind == NotificationKind.RULE_RENOTIFY


def test_latency_percentile_of_the_scope_only(project):
    calls_write(project=project, records=[
        record(start_time=NOW - timedelta(minutes=10), model="gpt-4o", latency_ms=100.0 * (i + 1)) for i in range(20)
    ] + [record(start_time=NOW - timedelta(minutes=10), model="gpt-4o-mini", latency_ms=9000.0) for _ in range(20)])
    rule = make_rule(project, kind="latency", percentile="p95", threshold=Decimal(1000), scope="model",
                     scope_value="gpt-4o", window_minutes=15)
    result = evaluate(rule, NOW)
    assert result.observation.value == pytest.approx(Decimal(1900), rel=Decimal("0.02"))
    assert result.change.to_state == RuleState.FIRING
    rule_update(rule=AlertRule.objects.get(pk=rule.pk), threshold=Decimal(2500))
    assert evaluate(rule, NOW + timedelta(minutes=1)).change.to_state == RuleState.RESOLVED


def test_share_of_calls_cut_off_at_max_tokens(project):
    rule = make_rule(project, kind="length_share", threshold=Decimal(25), window_minutes=15, min_calls=5)
    calls(project, NOW - timedelta(minutes=3), 6, finish_reason="stop")
    calls(project, NOW - timedelta(minutes=3), 4, finish_reason="length")
    result = evaluate(rule, NOW)
    assert result.observation.value == Decimal(40) and result.observation.breached


def test_spend_in_a_window_names_the_models_that_spent_it(project):
    rule = make_rule(project, kind="spend", threshold=Decimal(5), window_minutes=60)
    spend(project, "2.00", NOW - timedelta(hours=2))  # outside the window
    spend(project, "4.00", NOW - timedelta(minutes=30), model="gpt-4o")
    assert not evaluate(rule, NOW).observation.breached
    spend(project, "1.50", NOW - timedelta(minutes=10), model="o3")
    fired = evaluate(rule, NOW + timedelta(minutes=1))
    assert fired.observation.value == Decimal("5.50") and fired.change is not None
    assert fired.notification.context["table"]["rows"] == [["gpt-4o", "1", "$4.00"], ["o3", "1", "$1.50"]]


def test_runaway_users_are_compared_with_their_own_baseline(project):
    rule = make_rule(project, kind="runaway", dimension="user", factor=Decimal(10), window_minutes=10,
                     baseline_hours=24, min_spend=Decimal(1))
    window_start = NOW - timedelta(minutes=10)
    for hour in range(1, 25):
        spend(project, "0.10", window_start - timedelta(hours=hour) + timedelta(minutes=1), user_id="steady-small")
        spend(project, "1.00", window_start - timedelta(hours=hour) + timedelta(minutes=1), user_id="steady-big")
    spend(project, "3.00", NOW - timedelta(minutes=5), user_id="steady-small")  # 180x its usual 10 minutes
    spend(project, "1.50", NOW - timedelta(minutes=5), user_id="steady-big")  # 9x: within its habits
    spend(project, "0.50", NOW - timedelta(minutes=5), user_id="newcomer-small")  # under min_spend
    spend(project, "2.00", NOW - timedelta(minutes=5), user_id="newcomer-big")  # no baseline at all
    result = evaluate(rule, NOW)
    offenders = result.observation.detail["offenders"]
    assert [o["name"] for o in offenders] == ["steady-small", "newcomer-big"]
    assert offenders[0]["ratio"] == pytest.approx(Decimal(180)) and offenders[1]["ratio"] is None
    assert result.change.to_state == RuleState.FIRING and result.observation.value == Decimal("3.00")
    rows = result.notification.context["table"]["rows"]
    assert rows == [["steady-small", "$3.00", "$0.01667", "180.0×"], ["newcomer-big", "$2.00", "$0.00", "new"]]


def test_runaway_traces_are_compared_with_their_own_earlier_spend(project):
    rule = make_rule(project, kind="runaway", dimension="trace", factor=Decimal(5), window_minutes=10,
                     min_spend=Decimal(1))
    spend(project, "0.10", NOW - timedelta(hours=2), trace_id="loop")
    spend(project, "0.10", NOW - timedelta(hours=1), trace_id="loop")
    for minute in (9, 6, 3):
        spend(project, "1.30", NOW - timedelta(minutes=minute), trace_id="loop")
    for minute in range(5, 60, 10):  # $1 every 10 minutes for an hour: its usual pace
        spend(project, "1.00", NOW - timedelta(minutes=minute), trace_id="steady")
    offenders = evaluate(rule, NOW).observation.detail["offenders"]
    assert [o["name"] for o in offenders] == ["loop"]
    assert offenders[0]["spent"] == Decimal("3.90")
    assert offenders[0]["expected"] == pytest.approx(Decimal("0.2") * 10 / 110)


def test_runaway_features_too(project):
    rule = make_rule(project, kind="runaway", dimension="feature", factor=Decimal(3), window_minutes=30,
                     baseline_hours=6, min_spend=Decimal("0.50"))
    spend(project, "6.00", NOW - timedelta(hours=3), feature="search")  # $1/h baseline: $0.50 per 30 min
    spend(project, "1.00", NOW - timedelta(minutes=20), feature="search")
    spend(project, "0.60", NOW - timedelta(minutes=20), feature="summaries")
    assert [o["name"] for o in evaluate(rule, NOW).observation.detail["offenders"]] == ["summaries"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "latency", "threshold": Decimal(10)}, "percentile"),
        ({"kind": "error_rate", "threshold": Decimal(120)}, "threshold"),
        ({"kind": "error_rate", "threshold": Decimal(0)}, "threshold"),
        ({"kind": "spend", "threshold": Decimal(5), "window_minutes": 0}, "window_minutes"),
        ({"kind": "latency", "percentile": "p99", "threshold": Decimal(10), "scope": "tag", "scope_value": "x"},
         "scope"),
        ({"kind": "runaway", "dimension": "user", "factor": Decimal(1), "min_spend": Decimal(1)}, "factor"),
        ({"kind": "runaway", "factor": Decimal(5), "min_spend": Decimal(1)}, "dimension"),
        ({"kind": "runaway", "dimension": "trace", "factor": Decimal(5)}, "min_spend"),
        ({"kind": "spend", "threshold": Decimal(5), "recipients": ["ops@"]}, "recipients"),
    ],
)
def test_a_rule_that_cannot_work_is_refused_naming_the_field(project, fields, field):
    with pytest.raises(ValidationError) as error:
        make_rule(project, **fields)
    assert field in error.value.message_dict
