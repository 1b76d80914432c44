"""POST /api/v1/events: what is accepted, and how it is stored."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from observatory.calls.models import Call, CallContent, Trace
from observatory.tenancy.models import RedactionMode
from tests.ingest.conftest import event, now_iso


def test_one_event_is_stored_with_every_field(ingest, project):
    start = datetime.now(UTC) - timedelta(minutes=2)
    response = ingest.post({
        "id": "evt-1", "trace_id": "trace-1", "parent_span_id": "root", "name": "answer", "kind": "generation",
        "start_time": start.isoformat(), "end_time": (start + timedelta(milliseconds=1500)).isoformat(),
        "time_to_first_token_ms": 300, "provider": "openai", "model": "gpt-4o", "input_tokens": 1200,
        "cached_input_tokens": 200, "output_tokens": 300, "reasoning_tokens": 0, "finish_reason": "stop",
        "user_id": "u-1", "session_id": "s-1", "environment": "production", "release": "1.4.2",
        "feature": "support-chat", "prompt_name": "support", "prompt_version": 7, "tags": ["beta", "beta", "eu"],
        "metadata": {"region": "eu-west-1"}, "input": [{"role": "user", "content": "hi"}], "output": "hello",
    })
    assert response.status_code == 200, response.json()
    assert response.json()["results"] == [{"index": 0, "status": "accepted", "trace_id": "trace-1", "span_id": "evt-1"}]
    call = Call.objects.get(project=project)
    assert (call.trace_id, call.span_id, call.parent_span_id, call.name) == ("trace-1", "evt-1", "root", "answer")
    assert call.start_time == start and call.latency_ms == pytest.approx(1500)
    assert call.time_to_first_token_ms == 300 and call.total_tokens == 1500
    # gpt-4o: 1000 uncached x $2.50/M + 200 cached x $1.25/M + 300 output x $10/M
    assert call.cost == Decimal("0.00575") and call.cost_source == "catalog"
    assert call.prompt_version == "7" and call.tags == ["beta", "eu"] and call.metadata == {"region": "eu-west-1"}
    assert (call.user_id, call.session_id, call.environment, call.release, call.feature) == (
        "u-1", "s-1", "production", "1.4.2", "support-chat")
    content = CallContent.objects.get(call_id=call.id)
    assert content.input == [{"role": "user", "content": "hi"}] and content.output == "hello"


def test_a_thousand_events_in_one_request(ingest, project):
    response = ingest.post({"events": [event(id=f"e{i}") for i in range(1000)]})
    assert response.status_code == 200
    assert response.json()["accepted"] == 1000
    assert Call.objects.filter(project=project).count() == 1000


def test_five_megabytes_in_one_request(ingest, project):
    text = "lorem ipsum " * 450  # ~5.4 KB of prompt per event
    payload = {"events": [event(id=f"e{i}", input=text) for i in range(1000)]}
    response = ingest.post(payload)
    assert response.status_code == 200 and response.json()["accepted"] == 1000
    assert CallContent.objects.filter(project=project).count() == 1000


def test_gzip_body_is_accepted(ingest, project):
    response = ingest.post({"events": [event(id=f"g{i}") for i in range(50)]}, gzip_body=True)
    assert response.status_code == 200 and response.json()["accepted"] == 50


def test_retry_stores_event_once(ingest, project):
    batch = {"events": [event(id="a", start_time="2026-11-22T09:00:00Z"), event(id="b")]}
    batch["events"][0]["start_time"] = now_iso(timedelta(minutes=-1))
    first = ingest.post(batch)
    retry = ingest.post(batch)
    assert first.json()["accepted"] == 2
    assert retry.status_code == 200
    assert (retry.json()["accepted"], retry.json()["duplicates"]) == (0, 2)
    assert [r["status"] for r in retry.json()["results"]] == ["duplicate", "duplicate"]
    assert Call.objects.filter(project=project).count() == 2
    assert Trace.objects.get(project=project, trace_id="a").span_count == 1


def test_one_bad_event_never_drops_the_good_ones(ingest, project):
    response = ingest.post({"events": [event(id="good-1"), event(id="bad", input_tokens="many"), event(id="good-2")]})
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["results"][1] == {"index": 1, "status": "rejected",
                                  "errors": [{"field": "input_tokens", "message": "Expected `int`, got `str`"}]}
    assert set(Call.objects.values_list("span_id", flat=True)) == {"good-1", "good-2"}


def test_ids_are_generated_when_absent_and_derived_from_id(ingest, project):
    response = ingest.post({"events": [event(), event(id="only-id"), event(id="x", trace_id="t-1")]})
    generated, from_id, with_trace = response.json()["results"]
    assert len(generated["trace_id"]) == 32 and len(generated["span_id"]) == 16
    assert (from_id["trace_id"], from_id["span_id"]) == ("only-id", "only-id")
    assert (with_trace["trace_id"], with_trace["span_id"]) == ("t-1", "x")


@pytest.mark.parametrize(
    "value, expected",
    [
        (1763805600, datetime(2025, 11, 22, 10, 0, tzinfo=UTC)),  # seconds
        (1763805600.25, datetime(2025, 11, 22, 10, 0, 0, 250000, tzinfo=UTC)),
        (1763805600250, datetime(2025, 11, 22, 10, 0, 0, 250000, tzinfo=UTC)),  # milliseconds
        (1763805600250000, datetime(2025, 11, 22, 10, 0, 0, 250000, tzinfo=UTC)),  # microseconds
        (1763805600250000000, datetime(2025, 11, 22, 10, 0, 0, 250000, tzinfo=UTC)),  # nanoseconds
        ("2025-11-22T10:00:00.25", datetime(2025, 11, 22, 10, 0, 0, 250000, tzinfo=UTC)),  # no offset: UTC
        ("2025-11-22T11:00:00.25+01:00", datetime(2025, 11, 22, 10, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_timestamps_iso_or_epoch(ingest, project, settings, value, expected):
    settings.INGEST_MAX_PAST_DAYS = settings.RETENTION_DAYS = 3650
    response = ingest.post(event(id="t", start_time=value))
    assert response.status_code == 200, response.json()
    assert Call.objects.get(project=project).start_time == expected


def test_latency_is_derived_from_start_and_end_or_end_from_latency(ingest, project):
    start = datetime.now(UTC) - timedelta(minutes=1)
    ingest.post({"events": [
        event(id="a", start_time=start.isoformat(), end_time=(start + timedelta(seconds=2)).isoformat(), latency_ms=None),
        event(id="b", start_time=None, end_time=start.isoformat(), latency_ms=400),
    ]})
    assert Call.objects.get(span_id="a").latency_ms == pytest.approx(2000)
    assert Call.objects.get(span_id="b").start_time == start - timedelta(milliseconds=400)


def test_client_cost_is_kept_and_unknown_models_are_not_zero(ingest, project):
    ingest.post({"events": [event(id="c", cost="0.0123"), event(id="u", model="our-llama-7b", provider="vllm")]})
    client = Call.objects.get(span_id="c")
    unknown = Call.objects.get(span_id="u")
    assert (client.cost, client.cost_source) == (Decimal("0.0123"), "client")
    assert (unknown.cost, unknown.cost_source) == (None, "unknown")


def test_error_fields_imply_error_status(ingest, project):
    ingest.post(event(id="e", error_type="RateLimitError", error_message="429 Too Many Requests"))
    assert Call.objects.get(span_id="e").status == "error"


def test_masked_project_stores_no_secret(ingest, project):
    project.redaction_mode = RedactionMode.MASK
    project.save()
    ingest.post(event(id="m", input="my card is 4111 1111 1111 1111, mail me at a@b.example",
                      output="Bearer abcdefghijklmnopqrstuvwxyz"))
    content = CallContent.objects.get()
    assert content.input == "my card is [CARD], mail me at [EMAIL]" and content.output == "Bearer [TOKEN]"


def test_basic_auth_with_public_and_secret_key(ingest, api_key, project):
    credentials = base64.b64encode(f"{api_key.key.public_id}:{api_key.secret}".encode()).decode()
    response = ingest.post(event(id="basic"), auth=f"Basic {credentials}")
    assert response.status_code == 200
    assert Call.objects.filter(project=project, span_id="basic").exists()


def test_events_go_to_the_keys_project_only(ingest, project, outsider):
    ingest.post(event(id="mine"))
    assert Call.objects.filter(project=project).count() == 1
    assert not Call.objects.filter(project=outsider.project).exists()


def test_openapi_schema_publishes_the_event_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/events"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/NativeEvent"} in body["oneOf"]
    properties = schema["components"]["schemas"]["NativeEvent"]["properties"]
    assert properties["input_tokens"]["minimum"] == 0
    assert {"200", "207", "400", "401", "413", "415", "429", "503"} <= set(operation["responses"])
