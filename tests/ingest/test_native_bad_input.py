"""Every kind of bad input gets a 4xx naming the problem, never a 500, and nothing bad is stored."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
import zlib
from datetime import timedelta

import pytest
from django.core.handlers.wsgi import WSGIRequest

from ingest.native.views import events_ingest_view
from observatory.calls.models import Call, CallContent
from observatory.tenancy.services import api_key_revoke
from tests.ingest.conftest import event, now_iso


def rejected(response, field: str) -> str:
    """The message for `field` of the only event in a rejected request."""
    assert response.status_code == 400, response.content
    (result,) = response.json()["results"]
    assert result["status"] == "rejected"
    messages = [error["message"] for error in result["errors"] if error["field"] == field]
    assert messages, result["errors"]
    assert not Call.objects.exists()
    return messages[0]


def request_error(response, status: int) -> str:
    assert response.status_code == status, response.content
    assert not Call.objects.exists()
    return response.json()["detail"]


# --- the request as a whole ---------------------------------------------------------------

def test_invalid_json(ingest):
    assert request_error(ingest.post(raw=b'{"model": "gpt-4o",'), 400).startswith("Invalid JSON")


def test_empty_body(ingest):
    assert "empty" in request_error(ingest.post(raw=b"  \n"), 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_wrong_content_type(ingest, content_type):
    message = request_error(ingest.post(event(), content_type=content_type), 415)
    assert message == f"Content-Type must be application/json, not {content_type}."


def test_body_over_the_limit(ingest, settings):
    settings.INGEST_MAX_BODY_BYTES = 100_000
    payload = {"events": [event(id=f"e{i}", input="x" * 1000) for i in range(200)]}
    assert "larger than 100,000 bytes" in request_error(ingest.post(payload), 413)


def test_a_body_shorter_than_its_content_length_is_refused_as_incomplete(api_key):
    """What the web server hands over when the client went away mid-body."""
    body = json.dumps(event(id="cut")).encode()
    request = WSGIRequest({
        "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/events", "SERVER_NAME": "testserver", "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body) + 40), "CONTENT_TYPE": "application/json",
        "HTTP_AUTHORIZATION": f"Bearer {api_key.secret}", "wsgi.url_scheme": "http",
    })
    response = events_ingest_view(request)
    assert response.status_code == 400 and not Call.objects.exists()
    message = json.loads(response.content)["detail"]
    assert message.startswith(f"The request body ended after {len(body):,} of the {len(body) + 40:,} bytes")


def test_a_content_length_that_is_not_a_number(ingest):
    assert request_error(ingest.post(event(), headers={"CONTENT_LENGTH": "12abc"}), 400) == "Content-Length is not a number."


def test_gzip_bomb_is_refused_without_inflating_it(ingest, settings):
    settings.INGEST_MAX_BODY_BYTES = 1_000_000
    bomb = gzip.compress(b'{"events": [' + b" " * 200_000_000 + b"]}", compresslevel=9)  # 200 MB inflated
    assert len(bomb) < settings.INGEST_MAX_BODY_BYTES
    tracemalloc.start()
    response = ingest.post(raw=bomb, headers={"HTTP_CONTENT_ENCODING": "gzip"})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "inflates to more than 1,000,000 bytes" in request_error(response, 413)
    assert peak < 10 * settings.INGEST_MAX_BODY_BYTES  # far from the 200 MB it would inflate to


def test_corrupt_gzip(ingest):
    response = ingest.post(raw=b"\x1f\x8b\x08\x00garbage", headers={"HTTP_CONTENT_ENCODING": "gzip"})
    assert "not valid gzip" in request_error(response, 400)


def test_truncated_gzip(ingest):
    body = gzip.compress(json.dumps(event()).encode())[:-12]
    message = request_error(ingest.post(raw=body, headers={"HTTP_CONTENT_ENCODING": "gzip"}), 400)
    assert message == "The body is not valid gzip data: it is truncated."


def test_deflate_is_accepted_too(ingest):
    response = ingest.post(raw=zlib.compress(json.dumps(event()).encode()), headers={"HTTP_CONTENT_ENCODING": "deflate"})
    assert response.status_code == 200


def test_unsupported_content_encoding(ingest):
    response = ingest.post(raw=b"{}", headers={"HTTP_CONTENT_ENCODING": "br"})
    assert "Content-Encoding 'br' is not supported" in request_error(response, 415)


def test_invalid_utf8(ingest):
    assert "not valid UTF-8" in request_error(ingest.post(raw=b'{"model": "gpt-\xff\xfe"}'), 400)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_literals(ingest, literal):
    body = b'{"start_time": "' + now_iso().encode() + b'", "latency_ms": ' + literal + b"}"
    assert "NaN and Infinity are not JSON numbers" in request_error(ingest.post(raw=body), 400)


def test_number_beyond_float_range(ingest):
    body = b'{"start_time": "' + now_iso().encode() + b'", "latency_ms": 1e400}'
    assert "Number out of range" in request_error(ingest.post(raw=body), 400)


def test_json_nested_beyond_the_parser(ingest):
    body = b'{"metadata": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert request_error(ingest.post(raw=body), 400) == "The JSON is nested too deeply."


@pytest.mark.parametrize("payload, message", [
    ([event()], 'one event object or {"events": [...]}'),
    ("an event", 'one event object or {"events": [...]}'),
    ({"events": {"id": "x"}}, "events: must be an array"),
    ({"events": []}, "events: the array is empty"),
])
def test_wrong_envelope(ingest, payload, message):
    assert message in request_error(ingest.post(payload), 400)


def test_too_many_events_in_one_request(ingest):
    response = ingest.post({"events": [{}] * 10_001})
    assert request_error(response, 400) == "events: 10,001 events in one request; the limit is 10,000."


# --- authentication and rate limits -------------------------------------------------------

def test_missing_key(ingest):
    assert request_error(ingest.post(event(), auth=None), 401).startswith("Missing Authorization header")


def test_unknown_key(ingest):
    message = request_error(ingest.post(event(), auth="Bearer sk-obs-doesnotexist"), 401)
    assert message == "Invalid API key: it is unknown or has been revoked."


def test_revoked_key_stops_working_at_once(ingest, api_key):
    assert ingest.post(event(id="before")).status_code == 200
    api_key_revoke(key=api_key.key)
    response = ingest.post(event(id="after"))
    assert response.status_code == 401
    assert list(Call.objects.values_list("span_id", flat=True)) == ["before"]


def test_rate_limit_answers_429_with_retry_after(ingest, api_key):
    api_key.key.rate_limit_per_second = 2
    api_key.key.save()
    statuses = [ingest.post(event(id=f"r{i}")).status_code for i in range(4)]
    assert statuses[:2] == [200, 200] and 429 in statuses[2:]
    limited = ingest.post(event(id="r-last"))
    if limited.status_code == 429:  # the one-second window may have rolled over in between
        assert int(limited["Retry-After"]) >= 1
        assert "throttled" in limited.json()["detail"].lower()


def test_rate_limit_zero_means_unlimited(ingest, api_key, settings):
    settings.INGEST_RATE_LIMIT_PER_SECOND = 1
    api_key.key.rate_limit_per_second = 0
    api_key.key.save()
    assert {ingest.post(event(id=f"u{i}")).status_code for i in range(5)} == {200}


# --- one event ------------------------------------------------------------------------------

def test_missing_timestamp(ingest):
    assert rejected(ingest.post(event(start_time=None)), "start_time").startswith("required")


@pytest.mark.parametrize("field, value, message", [
    ("input_tokens", "100", "Expected `int`, got `str`"),
    ("input_tokens", 1.5, "Expected `int`, got `float`"),
    ("output_tokens", True, "Expected `int`, got `bool`"),
    ("latency_ms", "fast", "Expected `float | null`, got `str`"),
    ("tags", "beta", "Expected `array`, got `str`"),
    ("metadata", ["a"], "Expected `object`, got `array`"),
    ("kind", "llm", "Invalid enum value 'llm' (one of: generation, embedding, span, event,"),
    ("status", "failed", "Invalid enum value 'failed' (one of: ok, error)"),
    ("start_time", "yesterday", "Invalid RFC3339 encoded datetime"),
    ("model", 4, "Expected `str | null`, got `int`"),
])
def test_wrong_types_name_the_field(ingest, field, value, message):
    assert message in rejected(ingest.post(event(**{field: value})), field)


@pytest.mark.parametrize("field, value, message", [
    ("input_tokens", -1, "Expected `int` >= 0"),
    ("output_tokens", 10**12, "Expected `int` <= 100000000"),
    ("total_tokens", -5, ">= 0"),
    ("latency_ms", -3, ">= 0"),
    ("latency_ms", 10**12, "<="),
])
def test_negative_or_absurd_numbers(ingest, field, value, message):
    assert message in rejected(ingest.post(event(**{field: value})), field)


@pytest.mark.parametrize("cost, message", [
    ("NaN", "must be a finite number"),
    ("Infinity", "must be a finite number"),
    (-0.5, "must not be negative"),
    (1_000_000, "is not plausible"),
    ("lots", "Invalid decimal string"),
])
def test_bad_costs(ingest, cost, message):
    assert message in rejected(ingest.post(event(cost=cost)), "cost")


def test_cached_tokens_beyond_input_tokens(ingest):
    message = rejected(ingest.post(event(input_tokens=10, cached_input_tokens=20)), "cached_input_tokens")
    assert "input_tokens counts cached tokens too" in message


def test_reasoning_tokens_beyond_output_tokens(ingest):
    assert "exceed output_tokens" in rejected(ingest.post(event(output_tokens=5, reasoning_tokens=6)), "reasoning_tokens")


def test_time_to_first_token_after_the_end(ingest):
    response = ingest.post(event(latency_ms=100, time_to_first_token_ms=200))
    assert rejected(response, "time_to_first_token_ms") == "is greater than latency_ms"


def test_timestamp_too_far_in_the_past(ingest, settings):
    settings.INGEST_MAX_PAST_DAYS = 7
    message = rejected(ingest.post(event(start_time=now_iso(timedelta(days=-8)))), "start_time")
    assert message.endswith("is older than the 7-day ingest window")


def test_timestamp_in_the_future(ingest, settings):
    settings.INGEST_MAX_FUTURE_MINUTES = 5
    message = rejected(ingest.post(event(start_time=now_iso(timedelta(minutes=6)))), "start_time")
    assert message.endswith("is more than 5 minutes in the future")


def test_absurd_epoch(ingest):
    assert "is older than" in rejected(ingest.post(event(start_time=12)), "start_time")


def test_end_before_start(ingest):
    response = ingest.post(event(start_time=now_iso(timedelta(minutes=-1)), end_time=now_iso(timedelta(minutes=-2))))
    assert "is before start_time" in rejected(response, "end_time")


def test_id_and_span_id_that_disagree(ingest):
    assert "differs from span_id" in rejected(ingest.post(event(id="a", span_id="b")), "id")


@pytest.mark.parametrize("field, length", [("model", 257), ("trace_id", 129), ("user_id", 257), ("feature", 300)])
def test_oversize_identifiers_and_labels_are_rejected(ingest, field, length):
    assert "length <=" in rejected(ingest.post(event(**{field: "x" * length})), field)


def test_oversize_texts_are_truncated_with_a_flag(ingest, project):
    response = ingest.post(event(id="long", name="n" * 5000, error_message="e" * 10_000, input="p" * 300_000))
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result["warnings"] == ["truncated: name, error_message, input"]
    call = Call.objects.get(span_id="long")
    assert len(call.name) == 1000 and len(call.error_message) == 4000
    assert call.metadata["_truncated"] == ["name", "error_message", "input"]
    stored = CallContent.objects.get(call_id=call.id).input
    assert stored.startswith("p" * 1000) and stored.endswith("[truncated 37856 characters]")


def test_unknown_fields_are_kept_in_metadata(ingest, project):
    response = ingest.post(event(id="u", temperature=0.2, customer={"tier": "gold"}, metadata={"a": 1}))
    assert response.status_code == 200
    assert response.json()["results"][0]["warnings"] == ["unknown fields kept in metadata: customer, temperature"]
    assert Call.objects.get(span_id="u").metadata == {"a": 1, "temperature": 0.2, "customer": {"tier": "gold"}}


def test_deeply_nested_metadata(ingest):
    nested: dict = {}
    cursor = nested
    for _ in range(12):
        cursor["next"] = {}
        cursor = cursor["next"]
    assert rejected(ingest.post(event(metadata=nested)), "metadata") == "is nested deeper than 10 levels"


def test_deeply_nested_content(ingest):
    content: list = []
    cursor = content
    for _ in range(70):
        cursor.append([])
        cursor = cursor[0]
    assert rejected(ingest.post(event(input=content)), "input") == "is nested deeper than 64 levels"


def test_not_an_object(ingest):
    response = ingest.post({"events": [event(id="ok"), 42, "text"]})
    assert response.status_code == 207
    errors = [result.get("errors") for result in response.json()["results"]]
    assert errors[1] == [{"field": "event", "message": "must be a JSON object, not int"}]
    assert errors[2] == [{"field": "event", "message": "must be a JSON object, not str"}]


def test_nul_and_unusual_unicode_are_stored_safely(ingest, project):
    response = ingest.post(event(id="u", name="right-to-left \u202e text \x00", user_id="😀", input="\x00"))
    assert response.status_code == 200
    call = Call.objects.get(span_id="u")
    assert call.name == "right-to-left \u202e text \ufffd" and call.user_id == "😀"
