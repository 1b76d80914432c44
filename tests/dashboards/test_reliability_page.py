"""The Reliability page, the scorecard on the Overview, and loop flags in the trace list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from observatory.audit.models import AuditEvent
from observatory.calls.services import calls_write
from observatory.demo.traffic import demo_traffic_generate
from observatory.reliability.loops import loops_detect
from observatory.reliability.selectors import reliability_settings_get
from tests.dashboards.conftest import PAYLOADS, logged_in
from tests.records import record

NOW = datetime.now(UTC)


@pytest.fixture
def nets(project):
    """A day of calls through every safety net."""
    at = NOW - timedelta(hours=3)
    calls_write(project=project, records=[
        *[record(span_id=f"ok{i}", start_time=at + timedelta(seconds=i), max_tokens=256, timeout_ms=20_000.0)
          for i in range(6)],
        record(span_id="hit", start_time=at, cache_kind="exact"),
        record(span_id="limited", start_time=at, status="error", http_status=429, provider="anthropic",
               model="claude-3-5-haiku-latest"),
        record(span_id="retry", start_time=at, attempt=2, retry_of="limited", provider="anthropic",
               model="claude-3-5-haiku-latest", http_status=200),
        record(span_id="primary", start_time=at, model="gpt-4o", status="error", http_status=503),
        record(span_id="fallback", trace_id="fell-back", start_time=at, provider="anthropic",
               model="claude-3-5-haiku-latest", fallback_from_provider="openai", fallback_from_model="gpt-4o",
               http_status=200, streamed=True),
        *[record(trace_id="looping", span_id=f"loop{i}", name="agent step", start_time=NOW - timedelta(minutes=3),
                 input=[{"role": "user", "content": "same again"}]) for i in range(6)],
    ])
    loops_detect(project=project)
    return project


def page(client, project, query: str = ""):
    return client.get(f"/p/{project.slug}/reliability/{query}")


def test_the_page_shows_every_safety_net_with_charts_and_tables(nets, teammate):
    response = page(logged_in(teammate), nets)
    assert response.status_code == 200
    body = response.content.decode()
    totals = response.context["data"].totals
    assert (totals["cache_hits"], totals["retries"], totals["fallbacks"], totals["rate_limited"],
            totals["server_errors"]) == (1, 1, 1, 1, 1)
    assert set(response.context["charts"]) == {"cache", "savings", "retries", "rate_limits", "server_errors"}
    fallbacks = response.context["tables"]["fallbacks"].rows
    assert [(row["primary"], row["fallback"], row["calls"]) for row in fallbacks] == [
        ("openai / gpt-4o", "anthropic / claude-3-5-haiku-latest", 1)]
    assert fallbacks[0]["per_100"] == 100.0  # one fallback for the one call to gpt-4o
    [loop] = response.context["tables"]["loops"].rows
    assert loop["name"] == "agent step" and loop["why"] == "same prompt repeated" and loop["repeated_prompts"] == 6
    assert 'id="scorecard"' in body and 'id="thresholds"' in body


def test_the_overview_lists_the_items_that_do_not_pass(nets, viewer):
    body = logged_in(viewer).get(f"/p/{nets.slug}/").content.decode()
    assert "Production readiness" in body and "A budget with thresholds and a hard cap" in body
    assert f"/p/{nets.slug}/reliability/" in body


def test_the_trace_list_and_the_trace_page_flag_a_loop(nets, viewer):
    client = logged_in(viewer)
    rows = client.get(f"/p/{nets.slug}/traces/").context["tables"]["calls"].rows
    flagged = {row["name"] for row in rows if row.get("name_badge") == "loop"}
    assert flagged == {"agent step"}
    body = client.get(f"/p/{nets.slug}/trace/looping").content.decode()
    assert "Flagged as a runaway loop" in body and "the same prompt 6 times" in body
    fell_back = client.get(f"/p/{nets.slug}/trace/fell-back").content.decode()
    assert "fallback from openai / gpt-4o" in fell_back and "HTTP 200" in fell_back and "streamed" in fell_back


def test_engineers_change_thresholds_from_the_page(nets, teammate):
    response = logged_in(teammate).post(f"/p/{nets.slug}/reliability/", {
        **{name: getattr(reliability_settings_get(project=nets), name)
           for name in ("loop_max_spans", "loop_max_cost", "loop_max_repeats", "loop_window_minutes",
                        "min_max_tokens_share", "max_length_share", "stream_after_ms", "min_streamed_share",
                        "min_timeout_share", "max_attempts", "max_retry_share", "min_fallback_success",
                        "latency_budget_ms", "max_error_rate", "min_prompt_version_share",
                        "min_content_filter_share")},
        "latency_budget_ms": 4000, "action": "thresholds.update"})
    assert response.status_code == 302 and response["Location"].endswith("#thresholds")
    assert reliability_settings_get(project=nets).latency_budget_ms == 4000
    event = AuditEvent.objects.get(action="reliability.update")
    assert event.details == {"latency_budget_ms": ["10000", "4000"]} and event.actor == teammate


@pytest.mark.parametrize("field, value", [
    ("max_error_rate", "150"), ("loop_max_repeats", "1"), ("latency_budget_ms", "-3"), ("loop_max_cost", "free"),
])
def test_bad_thresholds_come_back_with_the_reason(nets, owner, field, value):
    response = logged_in(owner).post(f"/p/{nets.slug}/reliability/", {field: value})
    assert response.status_code == 400
    assert field in response.context["settings_form"].errors
    assert not AuditEvent.objects.filter(action="reliability.update").exists()


@pytest.mark.parametrize("persona", ["finance", "viewer"])
def test_finance_and_viewers_read_the_page_but_cannot_change_thresholds(request, nets, persona):
    client = logged_in(request.getfixturevalue(persona))
    response = page(client, nets)
    assert response.status_code == 200 and response.context["settings_form"] is None
    assert client.post(f"/p/{nets.slug}/reliability/", {"latency_budget_ms": 1}).status_code == 403
    assert reliability_settings_get(project=nets).latency_budget_ms == 10_000


def test_threshold_changes_need_a_csrf_token_and_outsiders_get_404(nets, owner, outsider):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(f"/p/{nets.slug}/reliability/", {"latency_budget_ms": 1}).status_code == 403
    assert page(logged_in(outsider.user), nets).status_code == 404
    assert logged_in(outsider.user).post(f"/p/{nets.slug}/reliability/", {"latency_budget_ms": 1}).status_code == 404


def test_an_empty_project_says_what_to_do(project, owner):
    body = page(logged_in(owner), project).content.decode()
    assert "No calls yet" in body and 'id="thresholds"' in body


def test_hostile_fallback_names_render_inert(pages_project, owner):
    body = page(logged_in(owner), pages_project).content.decode()
    for payload in PAYLOADS:
        if "<" in payload:
            assert payload not in body
    assert "&lt;script&gt;" in body


@pytest.fixture
def recent_demo(project):
    """A demo week ending now: what someone trying Observatory sees first. Blocked prompts and
    flagged answers are a few per thousand filtered calls, and where the draws land depends on
    the hour the test runs: 12,000 calls make "none at all" vanishingly unlikely (4,000 were
    not enough once)."""
    demo_traffic_generate(project=project, calls=12000, days=7, seed=23)
    return project


def test_the_reliability_page_of_a_demo_project_has_every_chart(recent_demo, teammate):
    response = logged_in(teammate).get(f"/p/{recent_demo.slug}/reliability/")
    assert response.status_code == 200
    assert set(response.context["charts"]) == {"cache", "savings", "retries", "rate_limits", "server_errors", "guards"}
    totals = response.context["data"].totals
    for name in ("cache_hits", "retries", "fallbacks", "rate_limited", "server_errors", "timeouts", "input_blocked",
                 "output_flagged"):
        assert totals[name] > 0, name
    tables = response.context["tables"]
    assert tables["fallbacks"].rows and tables["loops"].rows
