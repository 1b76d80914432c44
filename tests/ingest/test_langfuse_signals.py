"""Production signals through the Langfuse endpoints: modelParameters for limits and streaming,
metadata keys for caches, retries, fallbacks and filters; a bad value never costs the event."""

from __future__ import annotations

from decimal import Decimal

import pytest

from observatory.calls.models import Call
from tests.ingest.test_langfuse_ingestion import iso, post


def generation(event_id: str = "e1", **body) -> dict:
    return {"id": event_id, "type": "generation-create", "timestamp": iso(), "body": {
        "id": "gen-1", "traceId": "trace-1", "name": "answer", "startTime": iso(), "endTime": iso(900),
        "model": "gpt-4o-mini", "usage": {"input": 100, "output": 20, "unit": "TOKENS"}, **body}}


def ingested(api_key, *events) -> list[dict]:
    response = post(api_key, "/api/public/ingestion", {"batch": list(events)})
    assert response.status_code == 207
    body = response.json()
    assert body["errors"] == []
    return body["successes"]


def test_model_parameters_give_limit_streaming_and_timeout(api_key):
    (success,) = ingested(api_key, generation(modelParameters={"max_tokens": 256, "stream": True, "timeout": 30}))
    assert success == {"id": "e1", "status": 201}
    call = Call.objects.get(span_id="gen-1")
    assert (call.max_tokens, call.streamed, call.timeout_ms) == (256, True, 30000)
    assert call.metadata["model_parameters"] == {"max_tokens": 256, "stream": True, "timeout": 30}


def test_max_completion_tokens_is_the_limit_of_newer_openai_models(api_key):
    ingested(api_key, generation(modelParameters={"max_completion_tokens": "1024", "stream": "false"}))
    call = Call.objects.get(span_id="gen-1")
    assert (call.max_tokens, call.streamed) == (1024, False)


def test_metadata_keys_carry_caches_retries_fallbacks_and_filters(api_key):
    (success,) = ingested(api_key, generation(metadata={
        "cache_hit": True, "cache_kind": "semantic", "cache_saved_cost": "0.0031", "attempt": 3, "retry_of": "gen-0",
        "fallback_from_provider": "azure", "fallback_from_model": "gpt-4o", "http_status": 200,
        "content_filter": "passed", "plan": "pro",
    }))
    assert "warnings" not in success
    call = Call.objects.get(span_id="gen-1")
    assert (call.cache_hit, call.cache_kind, call.cache_saved_cost) == (True, "semantic", Decimal("0.0031"))
    assert (call.cost, call.cost_source) == (0, "cache")
    assert (call.attempt, call.retry_of) == (3, "gen-0")
    assert (call.fallback_from_provider, call.fallback_from_model) == ("azure", "gpt-4o")
    assert (call.http_status, call.content_filter) == (200, "passed")
    assert call.metadata["plan"] == "pro"


def test_signals_in_an_update_of_the_same_batch_are_merged(api_key):
    ingested(api_key, generation(), {"id": "e2", "type": "generation-update", "timestamp": iso(900), "body": {
        "id": "gen-1", "traceId": "trace-1", "metadata": {"content_filter": "output_flagged", "http_status": 400}}})
    call = Call.objects.get(span_id="gen-1")
    assert (call.content_filter, call.http_status) == ("output_flagged", 400)


def test_signals_in_a_later_update_patch_the_stored_call(api_key):
    ingested(api_key, generation())
    (success,) = ingested(api_key, {"id": "e2", "type": "generation-update", "timestamp": iso(900), "body": {
        "id": "gen-1", "traceId": "trace-1", "modelParameters": {"max_tokens": 64},
        "metadata": {"http_status": 429, "attempt": "many"}}})
    assert success["warnings"] == ["metadata.attempt is not a whole number ('many'); ignored"]
    call = Call.objects.get(span_id="gen-1")
    assert (call.max_tokens, call.http_status, call.attempt) == (64, 429, None)


@pytest.mark.parametrize(("body", "field", "warning"), [
    ({"modelParameters": {"max_tokens": "lots"}}, "max_tokens", "modelParameters.max_tokens is not a whole number"),
    ({"modelParameters": {"max_completion_tokens": -1}}, "max_tokens",
     "modelParameters.max_completion_tokens is outside 1..100000000"),
    ({"modelParameters": {"stream": "maybe"}}, "streamed", "modelParameters.stream is not true or false"),
    ({"modelParameters": {"timeout": "never"}}, "timeout_ms", "modelParameters.timeout is not a non-negative number"),
    ({"modelParameters": {"timeout": 10**9}}, "timeout_ms", "modelParameters.timeout is longer than a week"),
    ({"metadata": {"cache_hit": "yes please"}}, "cache_hit", "metadata.cache_hit is not true or false"),
    ({"metadata": {"cache_kind": "warm"}}, "cache_kind", "metadata.cache_kind is not one of exact, semantic"),
    ({"metadata": {"cache_saved_cost": "a lot"}}, "cache_saved_cost", "metadata.cache_saved_cost is not a number"),
    ({"metadata": {"attempt": 0}}, "attempt", "metadata.attempt is outside 1..100"),
    ({"metadata": {"retry_of": ""}}, "retry_of", "metadata.retry_of is not a non-empty string"),
    ({"metadata": {"fallback_from_provider": {"name": "azure"}}}, "fallback_from_provider",
     "metadata.fallback_from_provider is not a non-empty string"),
    ({"metadata": {"fallback_from_model": "m" * 300}}, "fallback_from_model",
     "metadata.fallback_from_model is longer than 256 characters"),
    ({"metadata": {"http_status": 42}}, "http_status", "metadata.http_status is outside 100..599"),
    ({"metadata": {"content_filter": "blocked"}}, "content_filter",
     "metadata.content_filter is not one of passed, input_blocked, output_flagged"),
    ({"metadata": {"cache_hit": False, "cache_kind": "exact"}}, "cache_kind",
     "metadata.cache_kind is given but the call was not a cache hit"),
    ({"metadata": {"retry_of": "gen-1"}}, "retry_of", "metadata.retry_of names the call itself"),
])
def test_a_bad_signal_is_ignored_and_reported_on_the_accepted_event(api_key, body, field, warning):
    (success,) = ingested(api_key, generation(**body))
    assert success["status"] == 201
    (reported,) = success["warnings"]
    assert reported.startswith(warning) and reported.endswith("; ignored")
    call = Call.objects.get(span_id="gen-1")
    assert getattr(call, field) is None
    assert (call.model, call.output_tokens) == ("gpt-4o-mini", 20)  # the rest of the event is kept


def test_a_negative_saving_is_ignored_and_the_saving_priced_instead(api_key):
    (success,) = ingested(api_key, generation(metadata={"cache_hit": True, "cache_saved_cost": -2}))
    assert success["warnings"] == ["metadata.cache_saved_cost must not be negative (-2); ignored"]
    call = Call.objects.get(span_id="gen-1")
    assert call.cache_hit is True and call.cache_saved_cost > 0


def test_a_create_sent_twice_in_a_batch_reports_its_bad_key_once(api_key):
    twice = generation(metadata={"cache_kind": "warm"})
    successes = ingested(api_key, twice, twice)
    assert [success.get("warnings") for success in successes] == [
        ["metadata.cache_kind is not one of exact, semantic ('warm'); ignored"]] * 2
    assert Call.objects.get(span_id="gen-1").cache_kind is None
