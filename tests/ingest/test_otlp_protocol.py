"""OTLP/HTTP as the specification describes it, and every kind of bad input."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from observatory.calls.models import Call, CallContent
from tests.ingest.otlp_builders import PROTOBUF, export_request, new_span_id, new_trace_id, post_otlp, span


def good_span(**kwargs):
    return span(name=kwargs.pop("name", "good"), trace_id=kwargs.pop("trace_id", new_trace_id()),
                attributes={"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 10}, **kwargs)


def otlp_json(trace_id: str, span_id: str, **span_fields) -> dict:
    now = time.time_ns()
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "name": "chat", "kind": 3,
            "startTimeUnixNano": str(now - 2 * 10**9), "endTimeUnixNano": str(now - 10**9),
            "attributes": [
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "100"}},
                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 20}},
                {"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}},
            ],
            "status": {"code": 1},
            **span_fields,
        }]}],
    }]}


def test_json_encoding_with_hex_ids(api_key):
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    response = post_otlp(api_key.secret, json.dumps(otlp_json(trace_id, span_id)).encode(), content_type="application/json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json() == {}
    call = Call.objects.get(span_id=span_id)
    assert (call.trace_id, call.model, call.input_tokens, call.output_tokens, call.finish_reason) == (
        trace_id, "gpt-4o", 100, 20, "stop")
    assert call.latency_ms == pytest.approx(1000)


def test_protobuf_response_and_retry_stored_once(api_key):
    body = export_request([good_span(), good_span()]).SerializeToString()
    first, retry = post_otlp(api_key.secret, body), post_otlp(api_key.secret, body)
    for response in (first, retry):
        assert response.status_code == 200 and response["Content-Type"] == PROTOBUF
        assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    assert Call.objects.count() == 2


def test_gzip_body(api_key):
    body = gzip.compress(export_request([good_span()]).SerializeToString())
    assert post_otlp(api_key.secret, body, headers={"HTTP_CONTENT_ENCODING": "gzip"}).status_code == 200
    assert Call.objects.count() == 1


def test_partial_success_names_the_bad_spans_and_keeps_the_good(api_key):
    now = time.time_ns()
    trace_id = new_trace_id()
    bad_ids = span(name="no-ids", trace_id=b"", span_id=b"")
    zero_trace = span(name="zero", trace_id=bytes(16))
    ancient = span(name="ancient", trace_id=trace_id, start_ns=946684800 * 10**9)
    future = span(name="future", trace_id=trace_id, start_ns=now + 3600 * 10**9)
    backwards = span(name="backwards", trace_id=trace_id, start_ns=now - 10**9, end_ns=now - 2 * 10**9)
    no_start = span(name="no-start", trace_id=trace_id, start_ns=0, end_ns=now)
    response = post_otlp(api_key.secret, export_request(
        [good_span(trace_id=trace_id), bad_ids, zero_trace, ancient, future, backwards, no_start]).SerializeToString())
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 6
    message = partial.error_message
    assert "trace_id must be 16 bytes" in message and "ingest window" in message and "in the future" in message
    assert "end_time_unix_nano is before start_time_unix_nano" in message and "start_time_unix_nano is missing" in message
    assert list(Call.objects.values_list("name", flat=True)) == ["good"]


def test_all_spans_bad_is_a_400_status(api_key):
    response = post_otlp(api_key.secret, export_request([span(name="x", trace_id=b"\x01" * 3)]).SerializeToString())
    assert response.status_code == 400
    status = status_pb2.Status.FromString(response.content)
    assert status.code == code_pb2.INVALID_ARGUMENT and "No span could be stored" in status.message


def test_malformed_protobuf(api_key):
    response = post_otlp(api_key.secret, b"\x0a\xff\xff\xff\xff\x0fnot protobuf")
    assert response.status_code == 400
    assert "not a valid OTLP protobuf" in status_pb2.Status.FromString(response.content).message


@pytest.mark.parametrize("document, fragment", [
    ({"spans": []}, 'expected {"resourceSpans": [...]}'),
    ({"resourceSpans": "all of them"}, 'expected {"resourceSpans": [...]}'),
    ({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}, "Failed to parse name field"),
    ([1, 2, 3], 'expected {"resourceSpans": [...]}'),
])
def test_json_that_is_not_otlp(api_key, document, fragment):
    response = post_otlp(api_key.secret, json.dumps(document).encode(), content_type="application/json")
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert not Call.objects.exists()


def test_invalid_hex_id_in_json_refuses_only_that_span(api_key):
    document = otlp_json("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    bad = json.loads(json.dumps(document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]))
    bad["spanId"] = "not-hex!"
    document["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    response = post_otlp(api_key.secret, json.dumps(document).encode(), content_type="application/json")
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert Call.objects.count() == 1


def test_attributes_of_the_wrong_type_are_ignored_with_a_warning(api_key):
    span_id = new_span_id()
    response = post_otlp(api_key.secret, export_request([span(name="chat", trace_id=new_trace_id(), span_id=span_id,
                                                              attributes={
        "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": "lots", "gen_ai.usage.output_tokens": "12",
        "gen_ai.usage.cost": "free", "gen_ai.response.time_to_first_chunk": -3,
    })]).SerializeToString())
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 0
    assert "gen_ai.usage.input_tokens is not a whole number ('lots'); ignored" in partial.error_message
    assert "cost is not a number ('free'); ignored" in partial.error_message
    call = Call.objects.get(span_id=span_id.hex())
    assert (call.input_tokens, call.output_tokens, call.cost_source) == (0, 12, "catalog")


def test_an_implausible_cost_is_ignored_and_the_call_priced_from_the_catalogue(api_key):
    span_id = new_span_id()
    response = post_otlp(api_key.secret, export_request([span(name="chat", trace_id=new_trace_id(), span_id=span_id,
                                                              attributes={
        "gen_ai.request.model": "gpt-4o", "gen_ai.usage.output_tokens": 12, "gen_ai.usage.cost": 1e300,
    })]).SerializeToString())
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 0 and "is not plausible (limit 100000); ignored" in partial.error_message
    assert Call.objects.get(span_id=span_id.hex()).cost_source == "catalog"


def test_huge_attribute_values_are_truncated_not_refused(api_key):
    span_id = new_span_id()
    response = post_otlp(api_key.secret, export_request([span(name="n" * 3000, trace_id=new_trace_id(), span_id=span_id,
                                                              attributes={
        "gen_ai.request.model": "m" * 1000, "input.value": "x" * 1_000_000, "user.id": "u" * 500,
    })]).SerializeToString())
    message = ExportTraceServiceResponse.FromString(response.content).partial_success.error_message
    assert "truncated: input, model, user_id, name" in message
    call = Call.objects.get(span_id=span_id.hex())
    assert (len(call.name), len(call.model), len(call.user_id)) == (1000, 256, 256)
    assert CallContent.objects.get(call_id=call.id).input.endswith("characters]")


def test_wrong_content_type_is_415(api_key):
    response = post_otlp(api_key.secret, b"{}", content_type="text/plain")
    assert response.status_code == 415 and "application/x-protobuf" in response.json()["message"]


def test_gzip_bomb_is_413(api_key, settings):
    settings.INGEST_MAX_BODY_BYTES = 1_000_000
    bomb = gzip.compress(b"\x00" * 50_000_000)
    response = post_otlp(api_key.secret, bomb, headers={"HTTP_CONTENT_ENCODING": "gzip"})
    assert response.status_code == 413
    assert "inflates to more than" in status_pb2.Status.FromString(response.content).message


def test_missing_or_bad_key_is_401_status(api_key):
    body = export_request([good_span()]).SerializeToString()
    response = post_otlp("sk-obs-wrong", body)
    assert response.status_code == 401
    assert status_pb2.Status.FromString(response.content).code == code_pb2.UNAUTHENTICATED
    assert not Call.objects.exists()


def test_rate_limited_key_gets_429_with_retry_after(api_key):
    api_key.key.rate_limit_per_second = 1
    api_key.key.save()
    from django.core.cache import cache

    cache.clear()
    body = export_request([good_span()]).SerializeToString()
    statuses = [post_otlp(api_key.secret, body) for _ in range(3)]
    limited = [response for response in statuses if response.status_code == 429]
    assert limited and int(limited[0]["Retry-After"]) >= 1
