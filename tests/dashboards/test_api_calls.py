"""The read API: project scoping, filters, keyset pagination, traces and who sees content."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from observatory.calls.models import Score
from observatory.calls.records import TraceAnnotation
from observatory.calls.services import calls_write
from observatory.calls.updates import traces_annotate
from tests.dashboards.conftest import logged_in
from tests.records import record

NOW = datetime.now(UTC).replace(microsecond=0)


def bearer(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def stored(project):
    records = [
        record(trace_id=f"t{i % 10}", span_id=f"s{i}", start_time=NOW - timedelta(minutes=i),
               model="gpt-4o" if i % 3 else "claude-haiku-4-5", provider="openai" if i % 3 else "anthropic",
               status="error" if i % 7 == 0 else "ok", user_id=f"u{i % 4}", feature="chat",
               input=f"question {i}", output=f"answer {i}")
        for i in range(45)
    ]
    calls_write(project=project, records=records)
    return records


def test_a_key_pages_through_its_projects_calls_newest_first(api_key, stored):
    client = bearer(api_key.secret)
    seen, cursor = [], None
    while True:
        response = client.get("/api/v1/calls", {"limit": 10, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200
        body = response.json()
        seen += [call["span_id"] for call in body["results"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"s{i}" for i in range(45)]


def test_filters_combine(api_key, stored):
    response = bearer(api_key.secret).get("/api/v1/calls", {
        "model": "gpt-4o", "status": "ok", "user_id": "u1", "start": (NOW - timedelta(minutes=30)).isoformat(),
    })
    spans = {call["span_id"] for call in response.json()["results"]}
    expected = {f"s{i}" for i in range(31) if i % 3 and i % 7 and i % 4 == 1}
    assert spans == expected


@pytest.mark.parametrize("params, field", [
    ({"limit": 0}, "limit"),
    ({"limit": 501}, "limit"),
    ({"status": "broken"}, "status"),
    ({"start": "last tuesday"}, "start"),
    ({"start": NOW.isoformat(), "end": (NOW - timedelta(hours=1)).isoformat()}, "end"),
    ({"cursor": "not-a-cursor"}, "cursor"),
])
def test_bad_query_parameters_name_the_parameter(api_key, params, field):
    response = bearer(api_key.secret).get("/api/v1/calls", params)
    assert response.status_code == 400
    assert field in response.json()


def test_a_key_never_sees_another_projects_calls(api_key, stored, outsider):
    calls_write(project=outsider.project, records=[record(trace_id="theirs", span_id="theirs")])
    mine = bearer(api_key.secret).get("/api/v1/calls", {"limit": 500}).json()["results"]
    assert "theirs" not in {call["span_id"] for call in mine}
    assert bearer(outsider.secret).get("/api/v1/traces/t1").status_code == 404


def test_members_name_the_project_and_outsiders_get_404(project, stored, teammate, outsider):
    assert logged_in(teammate).get("/api/v1/calls", {"project": project.slug}).status_code == 200
    assert logged_in(outsider.user).get("/api/v1/calls", {"project": project.slug}).status_code == 404
    assert logged_in(teammate).get("/api/v1/calls").status_code == 400  # which project?
    assert Client().get("/api/v1/calls", {"project": project.slug}).status_code in (401, 403)


def test_trace_has_its_calls_in_order_with_content_and_scores(api_key, project, stored):
    Score.objects.create(project=project, score_id="sc1", trace_id="t1", name="helpful", data_type="boolean",
                         value=1, timestamp=NOW)
    body = bearer(api_key.secret).get("/api/v1/traces/t1").json()
    assert body["trace"]["span_count"] == 5 and body["trace"]["trace_id"] == "t1"
    assert [call["span_id"] for call in body["calls"]] == ["s41", "s31", "s21", "s11", "s1"]
    assert body["calls"][-1]["input"] == "question 1" and body["calls"][-1]["output"] == "answer 1"
    assert body["scores"][0]["name"] == "helpful"


@pytest.mark.parametrize("persona, sees_content", [("owner", True), ("teammate", True), ("finance", False),
                                                   ("viewer", False)])
def test_only_roles_allowed_to_read_prompts_see_content(request, project, stored, persona, sees_content):
    from observatory.calls.records import TraceAnnotation
    from observatory.calls.updates import traces_annotate

    traces_annotate(project=project, annotations=[TraceAnnotation(trace_id="t1", input="trace question",
                                                                  output="trace answer")])
    user = request.getfixturevalue(persona)
    body = logged_in(user).get("/api/v1/traces/t1", {"project": project.slug}).json()
    assert (body["trace"]["input"] == "trace question") is sees_content
    assert (body["trace"]["output"] is None) is not sees_content
    call = body["calls"][-1]
    assert call["content_hidden"] is not sees_content
    assert (call["input"] == "question 1") is sees_content
    if not sees_content:
        assert call["input"] is None and call["output"] is None


def test_unknown_trace_is_404(api_key):
    assert bearer(api_key.secret).get("/api/v1/traces/nope").status_code == 404


def test_read_api_is_in_the_openapi_schema(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert {"/api/v1/calls", "/api/v1/traces/{trace_id}", "/api/v1/price-overrides"} <= set(paths)


@pytest.mark.parametrize("persona, sees_content", [("teammate", True), ("finance", False), ("viewer", False)])
def test_trace_level_content_and_feedback_comments_follow_the_role_too(request, project, stored, persona,
                                                                        sees_content):
    traces_annotate(project=project, annotations=[TraceAnnotation(
        trace_id="t1", input={"question": "my card is 4242"}, output="the answer", metadata={"plan": "pro"})])
    Score.objects.create(project=project, score_id="sc1", trace_id="t1", name="helpful", data_type="boolean",
                         value=1, comment="spot on", timestamp=NOW)
    user = request.getfixturevalue(persona)
    body = logged_in(user).get("/api/v1/traces/t1", {"project": project.slug}).json()
    trace = body["trace"]
    assert trace["content_hidden"] is not sees_content
    assert (trace["output"] == "the answer") is sees_content
    assert (body["scores"][0]["comment"] == "spot on") is sees_content
    if not sees_content:
        assert trace["input"] is None and trace["output"] is None and trace["metadata"] is None
