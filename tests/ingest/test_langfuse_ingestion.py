"""POST /api/public/ingestion (Langfuse SDK v2 batches) and POST /api/public/scores."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from observatory.calls.models import Call, CallContent, Score, Trace

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def iso(offset_ms: int = 0) -> str:
    return (T0 + timedelta(milliseconds=offset_ms)).isoformat().replace("+00:00", "Z")


def basic(api_key) -> str:
    return "Basic " + base64.b64encode(f"{api_key.key.public_id}:{api_key.secret}".encode()).decode()


def post(api_key, path: str, payload, auth: str | None = None):
    return Client().post(path, payload, content_type="application/json",
                         HTTP_AUTHORIZATION=auth or basic(api_key))


def sdk_v2_batch() -> dict:
    """What the Langfuse v2 Python SDK flushes for a traced chat request."""
    return {"batch": [
        {"id": "e1", "type": "trace-create", "timestamp": iso(), "body": {
            "id": "trace-1", "timestamp": iso(), "name": "support-chat", "userId": "user-9", "sessionId": "sess-3",
            "tags": ["production"], "release": "1.8.0", "environment": "production",
            "input": {"question": "Where is my order?"}, "metadata": {"plan": "pro"}}},
        {"id": "e2", "type": "span-create", "timestamp": iso(5), "body": {
            "id": "span-1", "traceId": "trace-1", "name": "retrieve-order", "startTime": iso(5),
            "input": {"order": 1042}}},
        {"id": "e3", "type": "span-update", "timestamp": iso(60), "body": {
            "id": "span-1", "traceId": "trace-1", "endTime": iso(60), "output": {"status": "shipped"}}},
        {"id": "e4", "type": "generation-create", "timestamp": iso(70), "body": {
            "id": "gen-1", "traceId": "trace-1", "parentObservationId": "span-1", "name": "answer",
            "startTime": iso(70), "model": "gpt-4o", "modelParameters": {"temperature": 0.2, "max_tokens": 256},
            "input": [{"role": "user", "content": "Where is my order?"}], "promptName": "support", "promptVersion": 3}},
        {"id": "e5", "type": "generation-update", "timestamp": iso(1270), "body": {
            "id": "gen-1", "traceId": "trace-1", "endTime": iso(1270), "completionStartTime": iso(370),
            "output": {"role": "assistant", "content": "It shipped yesterday."},
            "usage": {"input": 1000, "output": 100, "total": 1100, "unit": "TOKENS"}}},
        {"id": "e6", "type": "event-create", "timestamp": iso(1300), "body": {
            "id": "evt-1", "traceId": "trace-1", "name": "cache-miss", "startTime": iso(1300), "level": "WARNING"}},
        {"id": "e7", "type": "score-create", "timestamp": iso(2000), "body": {
            "id": "score-1", "traceId": "trace-1", "name": "user-feedback", "value": 1, "dataType": "BOOLEAN",
            "comment": "thumbs up"}},
        {"id": "e8", "type": "sdk-log", "timestamp": iso(2000), "body": {"log": "flushed"}},
    ]}


def test_a_v2_sdk_batch_becomes_a_trace_with_calls_and_a_score(api_key, project):
    response = post(api_key, "/api/public/ingestion", sdk_v2_batch())
    assert response.status_code == 207
    body = response.json()
    assert body["errors"] == []
    assert sorted(success["id"] for success in body["successes"]) == [f"e{i}" for i in range(1, 9)]

    span, generation, event = (Call.objects.get(span_id=name) for name in ("span-1", "gen-1", "evt-1"))
    assert (span.kind, span.latency_ms) == ("span", pytest.approx(55))
    assert CallContent.objects.get(call_id=span.id).output == {"status": "shipped"}
    assert (generation.kind, generation.parent_span_id, generation.model) == ("generation", "span-1", "gpt-4o")
    assert (generation.input_tokens, generation.output_tokens, generation.total_tokens) == (1000, 100, 1100)
    assert generation.cost == Decimal("0.0035") and generation.cost_source == "catalog"
    assert generation.latency_ms == pytest.approx(1200) and generation.time_to_first_token_ms == pytest.approx(300)
    assert (generation.prompt_name, generation.prompt_version) == ("support", "3")
    assert generation.metadata["model_parameters"] == {"temperature": 0.2, "max_tokens": 256}
    assert CallContent.objects.get(call_id=generation.id).output["content"] == "It shipped yesterday."
    assert event.kind == "event" and event.metadata["level"] == "WARNING"

    trace = Trace.objects.get(trace_id="trace-1")
    assert (trace.name, trace.user_id, trace.session_id, trace.release) == ("support-chat", "user-9", "sess-3", "1.8.0")
    assert trace.span_count == 3 and trace.cost == Decimal("0.0035")
    assert trace.input == {"question": "Where is my order?"} and trace.metadata == {"plan": "pro"}
    score = Score.objects.get(score_id="score-1")
    assert (score.data_type, score.value, score.comment) == ("boolean", 1.0, "thumbs up")


def test_a_retried_batch_is_stored_once(api_key):
    post(api_key, "/api/public/ingestion", sdk_v2_batch())
    retry = post(api_key, "/api/public/ingestion", sdk_v2_batch())
    assert retry.json()["errors"] == []
    assert Call.objects.count() == 3 and Score.objects.count() == 1
    assert Trace.objects.get(trace_id="trace-1").span_count == 3


def test_an_update_in_a_later_batch_patches_the_stored_call(api_key):
    batch = sdk_v2_batch()
    batch["batch"] = [item for item in batch["batch"] if item["id"] != "e5"]  # the generation did not finish yet
    post(api_key, "/api/public/ingestion", batch)
    later = post(api_key, "/api/public/ingestion", {"batch": [{"id": "e9", "type": "generation-update", "timestamp": iso(900),
                                                               "body": {"id": "gen-1", "traceId": "trace-1",
                                                                        "endTime": iso(900), "level": "ERROR",
                                                                        "statusMessage": "model overloaded",
                                                                        "usageDetails": {"input": 400, "input_cached_tokens": 600,
                                                                                         "output": 0},
                                                                        "costDetails": {"total": 0.002}}}]})
    assert later.json() == {"successes": [{"id": "e9", "status": 201}], "errors": []}
    generation = Call.objects.get(span_id="gen-1")
    assert (generation.status, generation.error_message) == ("error", "model overloaded")
    assert (generation.input_tokens, generation.cached_input_tokens) == (1000, 600)
    assert (generation.cost, generation.cost_source) == (Decimal("0.002"), "client")
    assert generation.latency_ms == pytest.approx(830)
    trace = Trace.objects.get(trace_id="trace-1")
    assert trace.error_count == 1 and trace.cost == Decimal("0.002")


@pytest.mark.parametrize("event, message", [
    ({"id": "x1", "type": "dataset-create", "body": {}}, "unknown event type 'dataset-create'"),
    ({"id": "x2", "type": "span-update", "body": {"id": "never-created"}}, "needs its traceId"),
    ({"id": "x3", "type": "span-create", "body": {"id": "old", "startTime": "2001-01-01T00:00:00Z"}},
     "outside the ingest window"),
    ({"id": "x4", "type": "span-create", "body": {"id": "backwards", "startTime": iso(100), "endTime": iso(0)}},
     "endTime is before startTime"),
    ({"id": "x5", "type": "score-create", "body": {"name": "n", "value": 1}}, "traceId or sessionId is required"),
    ({"id": "x6", "type": "score-create", "body": {"name": "n", "value": 3, "dataType": "BOOLEAN", "traceId": "t"}},
     "must be 0 or 1"),
    ({"id": "x7", "type": "generation-create", "body": {"id": "g", "startTime": iso(), "usage": {"input": "many"}}},
     "Expected `int | null`, got `str`"),
    ({"id": "x8", "type": "span-create", "body": {"id": "x" * 200, "startTime": iso()}}, "1 to 128 characters"),
    ({"id": "x9", "body": {}}, "missing required field `type`"),
    ({"id": "x10", "type": "generation-create", "body": {"id": "g2", "startTime": iso(), "costDetails": {"total": 1e12}}},
     "is not plausible"),
    ({"id": "x11", "type": "generation-create", "body": {"id": "g3", "startTime": iso(), "costDetails": {"input": -1}}},
     "must not be negative"),
])
def test_bad_events_are_named_and_the_good_ones_kept(api_key, event, message):
    good = {"id": "ok", "type": "span-create", "timestamp": iso(), "body": {"id": "fine", "traceId": "t", "startTime": iso()}}
    response = post(api_key, "/api/public/ingestion", {"batch": [good, event]})
    body = response.json()
    assert body["successes"] == [{"id": "ok", "status": 201}]
    (error,) = body["errors"]
    assert error["id"] == event["id"] and error["status"] == 400 and message in error["message"]
    assert Call.objects.filter(span_id="fine").exists()


def test_update_of_a_call_never_stored_is_404(api_key):
    response = post(api_key, "/api/public/ingestion", {"batch": [
        {"id": "u1", "type": "generation-update", "body": {"id": "ghost", "traceId": "t", "endTime": iso()}}]})
    (error,) = response.json()["errors"]
    assert error["status"] == 404 and "send its create event first" in error["message"]


@pytest.mark.parametrize("payload, status", [({"events": []}, 400), ([1, 2], 400)])
def test_a_body_that_is_not_a_batch_is_400(api_key, payload, status):
    response = post(api_key, "/api/public/ingestion", payload)
    assert response.status_code == status and "batch" in response.json()["message"]


def test_wrong_keys_are_401(api_key, outsider):
    wrong = "Basic " + base64.b64encode(f"{api_key.key.public_id}:{outsider.secret}".encode()).decode()
    assert post(api_key, "/api/public/ingestion", sdk_v2_batch(), auth=wrong).status_code == 401
    assert not Call.objects.exists()


def test_scores_endpoint_takes_a_list_and_reports_rejections(api_key):
    response = post(api_key, "/api/public/scores", [
        {"name": "accuracy", "value": 0.9, "traceId": "t1"},
        {"id": "s-2", "name": "tone", "value": "friendly", "dataType": "CATEGORICAL", "sessionId": "sess"},
        {"name": "broken", "value": 2, "dataType": "BOOLEAN", "traceId": "t1"},
    ])
    assert response.status_code == 207
    assert response.json()["accepted"] == 2 and response.json()["rejected"] == 1
    assert "must be 0 or 1" in response.json()["errors"][0]["message"]
    assert Score.objects.get(score_id="s-2").string_value == "friendly"
    single = post(api_key, "/api/public/scores", {"id": "s-3", "name": "n", "value": 1, "traceId": "t2"})
    assert single.json() == {"id": "s-3"}
    all_good = post(api_key, "/api/public/scores", [{"name": "n", "value": 1, "traceId": "t3"}])
    assert (all_good.status_code, all_good.json()) == (202, {"message": "Accepted"})


def test_projects_endpoint_answers_the_sdk_auth_check(api_key, project):
    response = Client().get("/api/public/projects", HTTP_AUTHORIZATION=basic(api_key))
    assert response.json() == {"data": [{"id": project.slug, "name": project.name, "metadata": {}, "retentionDays": None,
                                         "organization": {"id": "acme", "name": "Acme"}}]}
    assert Client().get("/api/public/projects").status_code == 401


def test_creating_an_observation_twice_in_a_batch_updates_it_and_answers_both(api_key):
    response = post(api_key, "/api/public/ingestion", {"batch": [
        {"id": "dup", "type": "span-create", "timestamp": iso(), "body": {"id": "obs", "traceId": "t", "startTime": iso()}},
        {"id": "dup", "type": "span-create", "timestamp": iso(), "body": {"id": "obs", "traceId": "t", "startTime": iso(),
                                                                           "endTime": iso(250), "name": "renamed"}},
    ]})
    assert response.json() == {"successes": [{"id": "dup", "status": 201}, {"id": "dup", "status": 201}], "errors": []}
    call = Call.objects.get(span_id="obs")
    assert (call.name, call.latency_ms) == ("renamed", pytest.approx(250))
