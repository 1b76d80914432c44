"""Alert rules on the safety-net rates and on runaway loops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from observatory.alerts.models import RuleState
from observatory.calls.services import calls_write
from observatory.reliability.loops import loops_detect
from tests.observatory.test_alert_rules import calls, evaluate, make_rule
from tests.records import record

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
AT = NOW - timedelta(minutes=5)


@pytest.mark.parametrize("kind, signal, message", [
    ("retry_rate", {"attempt": 2}, "Share of calls that are retries over the last 10 min: 30.0% of 10 calls"),
    ("fallback_rate", {"fallback_from_model": "gpt-4o"}, "Share of calls served by a fallback"),
    ("rate_limit_rate", {"http_status": 429, "status": "error"}, "Share of calls rate-limited (429)"),
    ("server_error_rate", {"http_status": 503, "status": "error"}, "Share of calls answered 5xx"),
    ("timeout_rate", {"status": "error", "error_type": "ReadTimeout"}, "Share of calls that timed out"),
    ("content_filter_rate", {"content_filter": "output_flagged"}, "blocked or flagged by a filter"),
])
def test_a_signal_rate_above_its_threshold_fires_and_resolves(project, kind, signal, message):
    rule = make_rule(project, kind=kind, threshold=Decimal(20), window_minutes=10, min_calls=5)
    calls(project, AT, 7)
    calls(project, AT, 3, **signal)
    fired = evaluate(rule, NOW)
    assert fired.observation.value == Decimal(30) and fired.change.to_state == RuleState.FIRING
    assert message in fired.notification.context["summary"]
    calls(project, NOW + timedelta(minutes=1), 20)
    assert evaluate(rule, NOW + timedelta(minutes=12)).change.to_state == RuleState.RESOLVED


def test_a_cache_hit_rate_fires_when_it_falls_below_its_threshold(project):
    rule = make_rule(project, kind="cache_hit_rate", threshold=Decimal(50), window_minutes=10, min_calls=5)
    calls(project, AT, 6, cache_kind="exact")
    calls(project, AT, 4)
    assert not evaluate(rule, NOW).observation.breached  # 60 %: fine
    calls(project, NOW + timedelta(minutes=1), 10)
    fired = evaluate(rule, NOW + timedelta(minutes=2))
    assert fired.observation.value == Decimal(30) and fired.change.to_state == RuleState.FIRING
    assert "Cache hit rate over the last 10 min: 30.0% of 20 calls (at least 50%)" in \
        fired.notification.context["summary"]


def test_a_provider_scoped_rate_counts_that_provider_only(project):
    calls(project, AT, 5, http_status=429, status="error")  # openai's
    calls(project, AT, 4, provider="anthropic", model="claude-3-5-haiku-latest")
    calls(project, AT, 1, provider="anthropic", model="claude-3-5-haiku-latest", http_status=429, status="error")
    rule = make_rule(project, kind="rate_limit_rate", threshold=Decimal(40), window_minutes=10, min_calls=1,
                     scope="provider", scope_value="anthropic")
    observation = evaluate(rule, NOW).observation
    assert (observation.value, observation.calls, observation.breached) == (Decimal(20), 5, False)


def test_a_loop_rule_fires_on_traces_flagged_within_its_window(project):
    rule = make_rule(project, kind="loop", threshold=Decimal(1), window_minutes=5)
    prompt = [{"role": "user", "content": "call the search tool"}]
    calls_write(project=project, records=[record(trace_id="agent-7", span_id=f"s{i}", input=prompt, name="agent",
                                                 start_time=AT + timedelta(seconds=i)) for i in range(5)])
    assert not evaluate(rule, NOW).observation.breached  # not flagged yet
    loops_detect(project=project, now=NOW)
    fired = evaluate(rule, NOW + timedelta(seconds=30))
    assert fired.change.to_state == RuleState.FIRING and fired.observation.value == 1
    context = fired.notification.context
    assert "1 trace(s) flagged as runaway loops over the last 5 min" in context["summary"]
    assert context["table"]["rows"][0][0] == "agent" and "same prompt repeated" in context["table"]["rows"][0][3]
    # Once no new loop appears within the window, the rule resolves.
    assert evaluate(rule, NOW + timedelta(minutes=6)).change.to_state == RuleState.RESOLVED


@pytest.mark.parametrize("fields, field", [
    ({"kind": "loop", "threshold": Decimal("1.5")}, "threshold"),
    ({"kind": "loop", "threshold": Decimal(1), "scope": "model", "scope_value": "gpt-4o"}, "scope"),
    ({"kind": "timeout_rate", "threshold": Decimal(120)}, "threshold"),
    ({"kind": "cache_hit_rate", "threshold": None}, "threshold"),
    ({"kind": "retry_rate", "threshold": Decimal(5), "scope": "tag", "scope_value": "beta"}, "scope"),
])
def test_invalid_rules_name_the_field(project, fields, field):
    with pytest.raises(ValidationError) as problem:
        make_rule(project, **fields)
    assert field in problem.value.message_dict
