"""/api/v1/readiness (the scorecard), /api/v1/readiness/settings and /api/v1/loops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from observatory.audit.models import AuditEvent
from observatory.calls.models import Call
from observatory.calls.services import calls_write
from observatory.reliability.loops import loops_detect
from observatory.reliability.selectors import reliability_settings_get
from tests.dashboards.test_metrics_api import bearer, logged_in
from tests.records import record

pytestmark = pytest.mark.django_db
NOW = datetime.now(UTC)


@pytest.fixture
def signals(project):
    """Ten calls in the last hour, two of them without max_tokens."""
    calls_write(project=project, records=[
        record(span_id=f"s{i}", start_time=NOW - timedelta(minutes=30 - i), max_tokens=None if i < 2 else 512)
        for i in range(10)])


def test_the_scorecard_answers_every_item_with_examples_linking_to_their_calls(project, api_key, signals):
    response = bearer(api_key.secret).get("/api/v1/readiness", {"start": (NOW - timedelta(hours=1)).isoformat()})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["calls"] == 10 and len(data["items"]) == 11 and data["status"] == "fail"
    items = {item["key"]: item for item in data["items"]}
    max_tokens = items["max_tokens"]
    assert (max_tokens["status"], max_tokens["value"], max_tokens["threshold"]) == ("warn", 80.0, 99.0)
    assert {example["span_id"] for example in max_tokens["examples"]} == {"s0", "s1"}
    example = max_tokens["examples"][0]
    call = Call.objects.get(span_id=example["span_id"])
    assert example["url"] == f"/p/{project.slug}/trace/{call.trace_id}#span-{call.id}"
    assert sum(data["counts"].values()) == 11


def test_a_window_without_calls_has_no_items(project, api_key):
    data = bearer(api_key.secret).get("/api/v1/readiness").json()
    assert (data["calls"], data["items"], data["status"]) == (0, [], "pass")


@pytest.mark.parametrize("params, field", [
    ({"start": "yesterday"}, "start"),
    ({"start": "2026-11-20T00:00:00Z", "end": "2026-11-19T00:00:00Z"}, "end"),
    ({"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
])
def test_a_bad_window_is_named(api_key, params, field):
    response = bearer(api_key.secret).get("/api/v1/readiness", params)
    assert response.status_code == 400 and field in response.json()


def test_engineers_change_thresholds_and_everyone_reads_them(project, teammate, viewer, finance, api_key):
    url = f"/api/v1/readiness/settings?project={project.slug}"
    response = logged_in(teammate).patch(url, {"min_max_tokens_share": "80", "loop_max_repeats": 8}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["min_max_tokens_share"], response.json()["loop_max_repeats"]) == ("80.00", 8)
    limits = reliability_settings_get(project=project)
    assert (limits.min_max_tokens_share, limits.loop_max_repeats) == (80, 8)
    assert AuditEvent.objects.get(action="reliability.update").actor == teammate
    for client in (logged_in(viewer), logged_in(finance), bearer(api_key.secret)):
        assert client.get(url).json()["loop_max_repeats"] == 8
        assert client.patch(url, {"loop_max_repeats": 3}, format="json").status_code == 403
    assert reliability_settings_get(project=project).loop_max_repeats == 8


@pytest.mark.parametrize("change, field", [
    ({"min_max_tokens_share": "120"}, "min_max_tokens_share"),
    ({"loop_max_repeats": 1}, "loop_max_repeats"),
    ({"loop_window_minutes": 0}, "loop_window_minutes"),
    ({"max_attempts": "many"}, "max_attempts"),
    ({"latency_budget_ms": -1}, "latency_budget_ms"),
    ({"loop_max_cost": "0"}, "loop_max_cost"),
    ({"colour": "blue"}, "colour"),
])
def test_invalid_settings_are_named_and_nothing_changes(project, owner, change, field):
    response = logged_in(owner).patch(f"/api/v1/readiness/settings?project={project.slug}", change, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert not AuditEvent.objects.filter(action="reliability.update").exists()


def test_loops_are_listed_for_their_project_only(project, api_key, outsider):
    prompt = [{"role": "user", "content": "retry the tool"}]
    calls_write(project=project, records=[record(trace_id="loop-1", span_id=f"l{i}", input=prompt,
                                                 start_time=NOW - timedelta(minutes=2, seconds=-i)) for i in range(6)])
    loops_detect(project=project)
    [loop] = bearer(api_key.secret).get("/api/v1/loops").json()
    assert (loop["trace_id"], loop["loop_reasons"], loop["repeated_prompts"], loop["span_count"]) == (
        "loop-1", ["repeated_prompt"], 6, 6)
    assert bearer(outsider.secret).get("/api/v1/loops").json() == []
    assert logged_in(outsider.user).get(f"/api/v1/loops?project={project.slug}").status_code == 404
    assert logged_in(outsider.user).get(f"/api/v1/readiness?project={project.slug}").status_code == 404


def test_the_metrics_api_serves_signal_rates_and_savings_as_exact_money(project, api_key, signals):
    response = bearer(api_key.secret).get("/api/v1/metrics", {"metrics": "cache_hit_rate,cache_saved_cost,retry_rate",
                                                               "interval": "none"})
    assert response.status_code == 200
    (row,) = response.json()["rows"]
    assert (row["cache_hit_rate"], row["cache_saved_cost"], row["retry_rate"]) == (0.0, "0", 0.0)
