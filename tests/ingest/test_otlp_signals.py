"""Production signals from OTLP spans: the GenAI and HTTP conventions, what instrumentations
use in the wild, and the observatory.* namespace; a bad value is ignored and named, never fatal."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from observatory.calls.models import Call
from tests.ingest.otlp_builders import export_request, new_span_id, new_trace_id, post_otlp, span

CHAT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20}


def sent(api_key, attributes: dict, *, span_id: bytes | None = None, error: str | None = None) -> tuple[Call, str]:
    """The stored call and the partial-success message of exporting one chat span."""
    span_id = span_id or new_span_id()
    response = post_otlp(api_key.secret, export_request([span(
        name="chat", trace_id=new_trace_id(), span_id=span_id, attributes={**CHAT, **attributes}, error=error,
    )]).SerializeToString())
    assert response.status_code == 200, response.content
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 0
    return Call.objects.get(span_id=span_id.hex()), partial.error_message


def test_genai_and_http_conventions_give_limits_status_and_attempt(api_key):
    call, message = sent(api_key, {
        "gen_ai.request.max_tokens": 512, "http.response.status_code": 429, "error.type": "rate_limit_exceeded",
        "http.request.resend_count": 2,
    }, error="Too Many Requests")
    assert (call.max_tokens, call.http_status, call.attempt) == (512, 429, 3)
    assert (call.status, call.error_type) == ("error", "rate_limit_exceeded")
    assert message == ""
    # Read as signals, not left over as unclaimed attributes.
    assert "attributes" not in call.metadata


def test_a_first_send_is_attempt_one(api_key):
    call, _ = sent(api_key, {"http.request.resend_count": 0})
    assert call.attempt == 1


def test_the_older_http_status_attribute_is_read_too(api_key):
    call, _ = sent(api_key, {"http.status_code": "503"})
    assert call.http_status == 503


@pytest.mark.parametrize(("attribute", "value", "streamed"), [
    ("gen_ai.request.stream", True, True),  # OpenLLMetry, .NET and Java GenAI instrumentations
    ("llm.is_streaming", "True", True),  # older OpenLLMetry; LiteLLM writes it as text
    ("llm.is_streaming", "False", False),
    ("gen_ai.request.is_stream", False, False),  # OpenLIT
])
def test_streaming_as_instrumentations_say_it(api_key, attribute, value, streamed):
    call, message = sent(api_key, {attribute: value})
    assert call.streamed is streamed and message == ""


def test_invocation_parameters_give_limit_and_streaming(api_key):
    """OpenInference and Langfuse send request parameters as one JSON document."""
    call, _ = sent(api_key, {"llm.invocation_parameters": json.dumps({"max_completion_tokens": 300, "stream": True})})
    assert (call.max_tokens, call.streamed) == (300, True)
    assert call.metadata["model_parameters"] == {"max_completion_tokens": 300, "stream": True}


def test_the_observatory_namespace_carries_what_no_convention_covers(api_key):
    call, message = sent(api_key, {
        "observatory.cache.hit": True, "observatory.cache.kind": "semantic", "observatory.cache.saved_cost": "0.0042",
        "observatory.timeout_ms": 30000, "observatory.content_filter": "passed",
    })
    assert (call.cache_hit, call.cache_kind, call.cache_saved_cost) == (True, "semantic", Decimal("0.0042"))
    assert (call.cost, call.cost_source) == (0, "cache")
    assert (call.timeout_ms, call.content_filter) == (30000, "passed")
    assert message == "" and "attributes" not in call.metadata


def test_a_cache_kind_alone_is_a_hit_saving_the_catalogue_price(api_key):
    call, _ = sent(api_key, {"observatory.cache.kind": "exact"})
    assert (call.cache_hit, call.cache_kind, call.cost_source) == (True, "exact", "cache")
    assert call.cache_saved_cost > 0


def test_a_retry_after_a_fallback_names_what_failed(api_key):
    failed_id = new_span_id().hex()
    call, _ = sent(api_key, {
        "observatory.retry_of": failed_id, "observatory.fallback.from_provider": "azure",
        "observatory.fallback.from_model": "gpt-4o", "http.response.status_code": 200,
    })
    assert (call.retry_of, call.attempt) == (failed_id, 2)  # a retry that does not count is the second try
    assert (call.fallback_from_provider, call.fallback_from_model, call.http_status) == ("azure", "gpt-4o", 200)


@pytest.mark.parametrize(("attribute", "value", "field", "problem"), [
    ("gen_ai.request.max_tokens", "many", "max_tokens", "is not a whole number ('many')"),
    ("gen_ai.request.max_tokens", 0, "max_tokens", "is outside 1..100000000 (0)"),
    ("http.response.status_code", 999, "http_status", "is outside 100..599 (999)"),
    ("http.response.status_code", "teapot", "http_status", "is not a whole number ('teapot')"),
    ("http.request.resend_count", -1, "attempt", "is outside 0..99 (-1)"),
    ("http.request.resend_count", 1.5, "attempt", "is not a whole number (1.5)"),
    ("gen_ai.request.stream", "sometimes", "streamed", "is not true or false ('sometimes')"),
    ("observatory.cache.hit", 1.0, "cache_hit", "is not true or false (1.0)"),
    ("observatory.cache.kind", "warm", "cache_kind", "is not one of exact, semantic ('warm')"),
    ("observatory.cache.saved_cost", "lots", "cache_saved_cost", "is not a number ('lots')"),
    ("observatory.retry_of", 42, "retry_of", "is not a non-empty string (42)"),
    ("observatory.fallback.from_provider", "x" * 300, "fallback_from_provider", "is longer than 256 characters"),
    ("observatory.fallback.from_model", ["gpt-4o"], "fallback_from_model", "is not a non-empty string (['gpt-4o'])"),
    ("observatory.timeout_ms", -5, "timeout_ms", "is not a non-negative number (-5)"),
    ("observatory.timeout_ms", "soon", "timeout_ms", "is not a non-negative number ('soon')"),
    ("observatory.content_filter", "blocked", "content_filter",
     "is not one of passed, input_blocked, output_flagged ('blocked')"),
])
def test_a_bad_signal_is_ignored_with_a_warning_naming_it(api_key, attribute, value, field, problem):
    call, message = sent(api_key, {attribute: value})
    assert getattr(call, field) is None
    assert f"{attribute} {problem}" in message and "; ignored" in message
    assert call.model == "gpt-4o-mini" and call.output_tokens == 20  # the rest of the span is kept


def test_an_absurd_saved_cost_is_ignored_and_the_saving_priced(api_key):
    call, message = sent(api_key, {"observatory.cache.hit": True, "observatory.cache.saved_cost": 1e9})
    assert "observatory.cache.saved_cost" in message and "is not plausible" in message
    assert call.cache_hit is True and call.cache_saved_cost > 0  # priced from the catalogue instead


@pytest.mark.parametrize(("attributes", "named", "field"), [
    ({"observatory.cache.hit": False, "observatory.cache.kind": "exact"}, "observatory.cache.kind", "cache_kind"),
    ({"observatory.cache.saved_cost": 0.01}, "observatory.cache.saved_cost", "cache_saved_cost"),
    ({"observatory.fallback.from_model": "gpt-4o-mini"}, "observatory.fallback.from_model", "fallback_from_model"),
])
def test_contradicting_signals_are_ignored_with_a_warning(api_key, attributes, named, field):
    call, message = sent(api_key, attributes)
    assert getattr(call, field) is None and f"{named} " in message


def test_a_retry_of_itself_is_ignored(api_key):
    span_id = new_span_id()
    call, message = sent(api_key, {"observatory.retry_of": span_id.hex()}, span_id=span_id)
    assert call.retry_of is None and call.attempt is None and "names the call itself" in message


def test_a_first_send_that_retries_another_keeps_the_link(api_key):
    call, message = sent(api_key, {"observatory.retry_of": "00f067aa0ba902b7", "http.request.resend_count": 0})
    assert (call.retry_of, call.attempt) == ("00f067aa0ba902b7", 2)
    assert "http.request.resend_count says first try" in message


def test_langfuse_sdk_metadata_and_model_parameters_carry_signals_over_otlp(api_key):
    """What Langfuse SDKs from v3 export: metadata keys as attributes, or one JSON document."""
    call, message = sent(api_key, {
        "langfuse.observation.type": "generation",
        "langfuse.observation.model.parameters": json.dumps({"max_tokens": 128, "stream": False, "timeout": 20}),
        "langfuse.observation.metadata.cache_kind": "exact", "langfuse.observation.metadata.attempt": "2",
        "langfuse.observation.metadata.retry_of": json.dumps("a1b2c3d4e5f60718"),
        "langfuse.observation.metadata.http_status": "429",
    })
    assert (call.max_tokens, call.streamed, call.timeout_ms) == (128, False, 20000)
    assert (call.cache_hit, call.cache_kind, call.attempt, call.retry_of) == (True, "exact", 2, "a1b2c3d4e5f60718")
    assert call.http_status == 429 and message == ""
    assert call.metadata["cache_kind"] == "exact"  # still in metadata, as the Langfuse endpoints keep it
    call, message = sent(api_key, {"langfuse.observation.metadata": json.dumps(
        {"content_filter": "output_flagged", "fallback_from_model": "gpt-4o", "http_status": "four hundred"})})
    assert (call.content_filter, call.fallback_from_model, call.http_status) == ("output_flagged", "gpt-4o", None)
    assert "langfuse.observation.metadata http_status is not a whole number ('four hundred'); ignored" in message
