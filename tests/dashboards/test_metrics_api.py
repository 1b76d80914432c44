"""GET /api/v1/metrics: who may read it, what it answers, and how it refuses bad queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from observatory.calls.services import calls_write
from tests.metrics_helpers import roll_up
from tests.records import record

URL = "/api/v1/metrics"


@pytest.fixture
def calls(project):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    calls_write(project=project, records=[
        record(start_time=start + timedelta(minutes=i), model="gpt-4o" if i % 2 else "gpt-4o-mini",
               feature="chat", latency_ms=100.0 * (i + 1), status="error" if i % 4 == 0 else "ok")
        for i in range(40)
    ])
    roll_up(project)
    return start


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def logged_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_api_key_reads_its_project_metrics(api_key, calls):
    response = bearer(api_key.secret).get(URL, {"metrics": "count,errors,error_rate,cost,latency_p50",
                                                "interval": "none", "group_by": "model"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["interval"] == "none" and body["group_by"] == ["model"]
    rows = {row["model"]: row for row in body["rows"]}
    assert set(rows) == {"gpt-4o", "gpt-4o-mini"}
    assert rows["gpt-4o"]["count"] == 20 and rows["gpt-4o-mini"]["errors"] == 10
    assert rows["gpt-4o-mini"]["error_rate"] == 0.5
    assert isinstance(rows["gpt-4o"]["cost"], str) and Decimal(rows["gpt-4o"]["cost"]) > 0  # exact, never a float
    assert rows["gpt-4o"]["latency_p50"] == pytest.approx(2000, rel=0.01)  # 200, 400, ... 4000 ms


def test_member_reads_metrics_by_naming_the_project(teammate, project, calls):
    response = logged_in(teammate).get(URL, {"project": project.slug, "metrics": "count", "interval": "hour",
                                             "start": (calls - timedelta(minutes=30)).isoformat()})
    assert response.status_code == 200, response.content
    rows = response.json()["rows"]
    assert sum(row["count"] for row in rows) == 40
    assert all(row["bucket"].endswith(":00:00Z") for row in rows)


def test_outsider_gets_404_and_their_key_sees_only_their_own_project(outsider, project, calls):
    response = logged_in(outsider.user).get(URL, {"project": project.slug, "metrics": "count"})
    assert response.status_code == 404
    response = bearer(outsider.secret).get(URL, {"project": project.slug, "metrics": "count", "interval": "none"})
    assert response.status_code == 200
    assert response.json()["project"] == outsider.project.slug and response.json()["rows"] == []


def test_anonymous_requests_are_refused(project):
    assert APIClient().get(URL, {"project": project.slug, "metrics": "count"}).status_code in (401, 403)


def test_windows_reaching_the_ends_of_the_calendar_are_answered(api_key, calls):
    response = bearer(api_key.secret).get(URL, {"metrics": "count", "interval": "none",
                                                "start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"})
    assert response.status_code == 200 and response.json()["rows"] == [{"count": 40}]
    response = bearer(api_key.secret).get(URL, {"metrics": "count", "start": "0001-01-01", "end": "0002-01-01"})
    assert response.status_code == 200 and response.json()["rows"] == []


def test_filters_keep_only_matching_calls(api_key, calls):
    response = bearer(api_key.secret).get(URL + "?metrics=count&interval=none&model=gpt-4o-mini&status=error")
    assert response.json()["rows"] == [{"count": 10}]
    response = bearer(api_key.secret).get(URL + "?metrics=count&interval=none&model=gpt-4o&model=gpt-4o-mini")
    assert response.json()["rows"] == [{"count": 40}]
    response = bearer(api_key.secret).get(URL + "?metrics=count&interval=none&prompt_name=")  # none set
    assert response.json()["rows"] == [{"count": 40}]


def test_top_users_by_cost(api_key, project):
    now = datetime.now(UTC)
    calls_write(project=project, records=[record(user_id="big", cost=Decimal("3")), record(user_id="big", cost=Decimal("2")),
                                          record(user_id="small", cost=Decimal("1"), start_time=now - timedelta(days=3))])
    roll_up(project)
    response = bearer(api_key.secret).get(URL, {"metrics": "cost,count", "group_by": "user_id", "interval": "none",
                                                "order_by": "-cost", "limit": 1,
                                                "start": (now - timedelta(days=30)).isoformat()})
    assert response.json()["rows"] == [{"user_id": "big", "cost": "5.000000000000", "count": 2}]


def test_finish_reason_share(api_key, project):
    calls_write(project=project, records=[record(finish_reason="stop"), record(finish_reason="stop"),
                                          record(finish_reason="length"), record(status="error")])
    response = bearer(api_key.secret).get(URL, {"metrics": "finish_reason_share", "interval": "none"})
    assert response.json()["rows"] == [{"finish_reason_share": {"stop": 0.5, "length": 0.25, "": 0.25}}]


@pytest.mark.parametrize(("query", "parameter", "fragment"), [
    ({"metrics": "p99"}, "metrics", "Unknown metric 'p99'"),
    ({}, "metrics", "Name at least one metric"),
    ({"metrics": "count", "interval": "week"}, "interval", "Unknown interval 'week'"),
    ({"metrics": "count", "start": "2026-11-20T10:00:00Z", "end": "2026-11-20T09:00:00Z"}, "end", "after start"),
    ({"metrics": "count", "start": "yesterday"}, "start", "not an ISO 8601"),
    ({"metrics": "count", "group_by": "colour"}, "group_by", "Unknown dimension 'colour'"),
    ({"metrics": "count", "colour": "red"}, "colour", "Unknown parameter 'colour'"),
    ({"metrics": "count", "limit": "lots"}, "limit", "not a whole number"),
    ({"metrics": "count", "limit": "0"}, "limit", "between 1 and"),
    ({"metrics": "count", "order_by": "-cost"}, "order_by", "requested metrics"),
    ({"metrics": "count", "interval": "minute", "start": "2020-01-01"}, "interval", "use interval=hour"),
    ({"metrics": "count", "interval": "minute", "start": "2026-01-01", "end": "2026-03-01"}, "interval", "buckets"),
    ({"metrics": "count", "group_by": "user_id,model"}, "group_by", "cannot be combined"),
    ({"metrics": "latency_p99", "group_by": "user_id"}, "metrics", "not available per user"),
])
def test_bad_queries_get_400_naming_the_parameter(api_key, query, parameter, fragment):
    response = bearer(api_key.secret).get(URL, query)
    assert response.status_code == 400, response.content
    messages = response.json()[parameter]
    assert any(fragment in message for message in messages), messages


def test_metrics_endpoint_is_in_the_openapi_schema(owner):
    response = logged_in(owner).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    operation = schema["paths"]["/api/v1/metrics"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert {"metrics", "start", "end", "interval", "group_by", "model", "feature"} <= set(parameters)
    assert "latency_p99" in parameters["metrics"]["description"]
    assert "MetricsResponse" in str(operation["responses"]["200"])
