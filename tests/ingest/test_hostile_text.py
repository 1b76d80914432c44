"""Hostile text in every free-text field of the three ways in (native, OTLP, Langfuse): NUL,
lone surrogates, bidirectional overrides, SQL and template syntax; 100,000-character values;
nesting far deeper than any real payload.

Each must be stored as sent (NUL becomes U+FFFD: PostgreSQL text cannot hold it) or refused
with a 4xx that names the field or the problem; never a 500. The trace page then shows what
was stored as text.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from observatory.calls.models import Call, CallContent, Trace
from observatory.tenancy.models import RedactionMode
from tests.ingest.conftest import IngestClient, event
from tests.ingest.otlp_builders import export_request, new_trace_id, post_otlp, span

pytestmark = pytest.mark.django_db

# Stored as sent (but NUL).
STORABLE = {
    "nul": "before\x00after",
    "rtl_override": "invoice\u202etxt.exe",
    "bidi_isolates": "\u2066abc\u2069\u200f\u061c",
    "sql": "'; DROP TABLE calls_call; --",
    "sql_comment": "x' OR '1'='1' /*",
    "django_template": "{{ settings.SECRET_KEY }}{% debug %}",
    "jinja_template": "${7*7}#{7*7}{{ ''.__class__ }}",
    "markup": "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "bom_and_zero_width": "\ufeff\u200b\u200d",
    "astral": "\U0001f600\U0001d54f",
}
# Not Unicode at all: a JSON escape of half a surrogate pair. No parser that checks its input
# can turn it into text, so the request is refused as malformed, saying where and why.
LONE_SURROGATES = {"high": "\\ud800", "low": "a\\udfffb", "reversed_pair": "\\ude00\\ud83d"}
_serial = itertools.count()


def stored_form(text: str) -> str:
    return text.replace("\x00", "\ufffd")


@pytest.fixture
def storing(project):
    """Content kept as sent, so that what is stored can be compared with what was sent."""
    project.redaction_mode = RedactionMode.STORE
    project.save()
    return project


# --- native ------------------------------------------------------------------------------------

NATIVE_FIELDS = {
    # field: how to read it back from the stored call
    "id": lambda call, content: call.span_id,
    "trace_id": lambda call, content: call.trace_id,
    "parent_span_id": lambda call, content: call.parent_span_id,
    "name": lambda call, content: call.name,
    "provider": lambda call, content: call.provider,
    "model": lambda call, content: call.model,
    "finish_reason": lambda call, content: call.finish_reason,
    "error_type": lambda call, content: call.error_type,
    "error_message": lambda call, content: call.error_message,
    "user_id": lambda call, content: call.user_id,
    "session_id": lambda call, content: call.session_id,
    "environment": lambda call, content: call.environment,
    "release": lambda call, content: call.release,
    "feature": lambda call, content: call.feature,
    "prompt_name": lambda call, content: call.prompt_name,
    "prompt_version": lambda call, content: call.prompt_version,
    "retry_of": lambda call, content: call.retry_of,
    "fallback_from_provider": lambda call, content: call.fallback_from_provider,
    "fallback_from_model": lambda call, content: call.fallback_from_model,
    "tags": lambda call, content: call.tags[0],
    "metadata": lambda call, content: (call.metadata or content.metadata)["note"],
    "metadata_key": lambda call, content: next(iter(call.metadata or content.metadata)),
    "input": lambda call, content: content.input,
    "output": lambda call, content: content.output,
}


def native_event(field: str, text: str) -> dict:
    """A valid event with `text` in `field` (unique per call, for the identifiers)."""
    serial = next(_serial)
    unique = f"{serial}-{text}"
    base = event(id=f"hostile-{serial}")
    if field == "tags":
        return {**base, "tags": [text]}
    if field == "metadata":
        return {**base, "metadata": {"note": text}}
    if field == "metadata_key":
        return {**base, "metadata": {text: 1}}
    if field == "id":
        return {**base, "id": unique}
    if field == "trace_id":
        return {**base, "trace_id": unique}
    if field == "retry_of":
        return {**base, "retry_of": unique, "attempt": 2}
    if field == "fallback_from_model":
        return {**base, "fallback_from_model": text, "fallback_from_provider": "anthropic"}
    return {**base, field: text}


def stored_call(project, sent: dict, result: dict) -> tuple[Call, CallContent]:
    call = Call.objects.get(project=project, trace_id=result["trace_id"].replace("\x00", "\ufffd"),
                            span_id=result["span_id"].replace("\x00", "\ufffd"))
    content = CallContent.objects.filter(call_id=call.id).first() or CallContent()
    return call, content


@pytest.mark.parametrize("field", NATIVE_FIELDS)
def test_native_fields_store_hostile_text_as_sent_or_name_the_field(storing, api_key, field):
    ingest = IngestClient(api_key.secret)
    for label, text in STORABLE.items():
        sent = native_event(field, text)
        response = ingest.post(sent)
        assert response.status_code < 500, (label, response.content)
        (result,) = response.json()["results"]
        if result["status"] == "rejected":
            assert response.status_code == 400
            named = {error["field"] for error in result["errors"]}
            assert field.split("_key")[0] in named or any(name.startswith(field.split("_key")[0]) for name in named), \
                (label, result)
            continue
        assert result["status"] == "accepted", (label, result)
        call, content = stored_call(storing, sent, result)
        expected = sent[field] if field in ("id", "trace_id", "retry_of") else text
        assert NATIVE_FIELDS[field](call, content) == stored_form(expected), label


@pytest.mark.parametrize("field", ["name", "model", "user_id", "metadata", "input"])
@pytest.mark.parametrize("surrogate", LONE_SURROGATES)
def test_native_lone_surrogates_are_refused_as_malformed_json(storing, api_key, field, surrogate):
    placeholder = "SURROGATE-HERE"
    body = json.dumps(native_event(field, placeholder)).replace(placeholder, LONE_SURROGATES[surrogate]).encode()
    response = IngestClient(api_key.secret).post(raw=body)
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert detail.startswith("Invalid JSON at byte ") and "half of a UTF-16 surrogate pair" in detail, detail
    assert not Call.objects.exists()


def test_native_100k_character_values_are_stored_or_truncated_with_a_warning(storing, api_key):
    huge = "x" * 100_000
    response = IngestClient(api_key.secret).post(event(id="huge", name=huge, error_message=huge, input=huge,
                                                       output=huge, metadata={"note": huge}))
    assert response.status_code == 200, response.content[:500]
    call = Call.objects.get(span_id="huge")
    content = CallContent.objects.get(call_id=call.id)
    assert content.input == huge and content.output == huge
    assert (call.metadata or content.metadata)["note"] == huge
    assert call.name == huge[:1000] and call.error_message == huge[:4000]
    assert set(call.metadata.get("_truncated") or content.metadata["_truncated"]) >= {"name", "error_message"}


# --- OTLP ----------------------------------------------------------------------------------------

OTLP_ATTRIBUTES = {
    "gen_ai.request.model": lambda call: call.model,
    "gen_ai.provider.name": lambda call: call.provider,
    "user.id": lambda call: call.user_id,
    "session.id": lambda call: call.session_id,
    "observatory.feature": lambda call: call.feature,
    "custom.note": lambda call: stored_metadata(call)["attributes"]["custom.note"],
}


def stored_metadata(call: Call) -> dict:
    """A call's metadata, wherever its size put it (the call row, or its content row over 2 KB)."""
    if call.metadata:
        return call.metadata
    return CallContent.objects.get(call_id=call.id).metadata


def otlp_post(api_key, spans, *, as_json: bool, resource: dict | None = None):
    request = export_request(spans, resource=resource)
    if not as_json:
        return post_otlp(api_key.secret, request.SerializeToString())
    return post_otlp(api_key.secret, otlp_json(request), content_type="application/json")


def otlp_json(request) -> bytes:
    """OTLP/JSON as exporters write it: ids in hex, not protobuf JSON's base64."""
    from google.protobuf import json_format

    document = json_format.MessageToDict(request)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for item in scope_spans["spans"]:
                for name in ("traceId", "spanId", "parentSpanId"):
                    if item.get(name):
                        item[name] = base64.b64decode(item[name]).hex()
    return json.dumps(document).encode()


def otlp_stored(project, trace_id: bytes) -> Call:
    return Call.objects.get(project=project, trace_id=trace_id.hex())


@pytest.mark.parametrize("as_json", [False, True], ids=["protobuf", "json"])
def test_otlp_fields_store_hostile_text_as_sent_or_say_what_was_refused(storing, api_key, as_json):
    for label, text in STORABLE.items():
        trace_id = new_trace_id()
        attributes = {"gen_ai.operation.name": "chat", **dict.fromkeys(OTLP_ATTRIBUTES, text),
                      "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2}
        built = span(name=text, trace_id=trace_id, attributes=attributes, error=text)
        response = otlp_post(api_key, [built], as_json=as_json,
                             resource={"service.name": text, "deployment.environment.name": text})
        assert response.status_code < 500, (label, response.content)
        assert response.status_code == 200, (label, response.content)
        call = otlp_stored(storing, trace_id)
        assert call.name == stored_form(text), label
        assert call.error_message == stored_form(text), label
        assert call.environment == stored_form(text), label
        for attribute, read in OTLP_ATTRIBUTES.items():
            assert read(call) == stored_form(text), (label, attribute)


def test_otlp_invalid_utf8_in_a_protobuf_string_is_a_400(api_key):
    valid = export_request([span(name="PLACEHOLDER!", trace_id=new_trace_id())]).SerializeToString()
    broken = valid.replace(b"PLACEHOLDER!", b"\xed\xa0\x80\xff\xfe\x00abcdef")  # a UTF-8-encoded surrogate, and worse
    assert len(broken) == len(valid)
    response = post_otlp(api_key.secret, broken)
    assert response.status_code == 400, response.content
    assert not Call.objects.exists()


@pytest.mark.parametrize("surrogate", LONE_SURROGATES)
def test_otlp_json_lone_surrogates_are_a_400(api_key, surrogate):
    request = export_request([span(name="SURROGATE-HERE", trace_id=new_trace_id())])
    body = otlp_json(request).replace(b"SURROGATE-HERE", LONE_SURROGATES[surrogate].encode())
    response = post_otlp(api_key.secret, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert b"surrogate pair" in response.content
    assert not Call.objects.exists()


def test_otlp_100k_character_attributes_and_deep_values_never_fail(storing, api_key):
    trace_id = new_trace_id()
    deep: dict = {"leaf": "bottom"}
    for _ in range(25):  # three protobuf messages a level; protobuf itself stops at 100
        deep = {"level": deep}
    huge = "y" * 100_000
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "custom.huge": huge,
                  "custom.deep": deep, "gen_ai.input.messages": json.dumps([{"role": "user", "content": huge}])}
    response = otlp_post(api_key, [span(name="big", trace_id=trace_id, attributes=attributes)], as_json=True)
    assert response.status_code < 500, response.content[:500]
    if response.status_code == 200:
        call = otlp_stored(storing, trace_id)
        content = CallContent.objects.filter(call_id=call.id).first()
        metadata = stored_metadata(call)
        # Metadata deeper than 10 levels is kept whole, as text, with a warning.
        assert set(metadata) == {"attributes_json"} and huge in metadata["attributes_json"], list(metadata)
        assert "nested deeper" in json.dumps(response.json())
        assert content is not None and content.input[0]["content"] == huge


def _length_delimited(field: int, payload: bytes) -> bytes:
    """One protobuf field of wire type 2 (bytes, string, sub-message)."""
    tag, length, varint = (field << 3) | 2, len(payload), b""
    while True:
        byte, length = length & 0x7F, length >> 7
        varint += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    return bytes([tag]) + varint + payload


def test_otlp_protobuf_nested_beyond_the_parser_is_a_400(api_key):
    value = _length_delimited(1, b"x")  # AnyValue{string_value: "x"}
    for _ in range(300):  # AnyValue{kvlist_value: KeyValueList{values: [KeyValue{key: "k", value: ...}]}}
        value = _length_delimited(6, _length_delimited(1, _length_delimited(1, b"k") + _length_delimited(2, value)))
    request = export_request([span(name="deep", trace_id=new_trace_id())])
    body = request.SerializeToString()
    scope_spans = request.resource_spans[0].scope_spans[0]
    deep_span = scope_spans.spans[0].SerializeToString() + _length_delimited(9, _length_delimited(1, b"custom.deep")
                                                                            + _length_delimited(2, value))
    scope = _length_delimited(1, scope_spans.scope.SerializeToString()) + _length_delimited(2, deep_span)
    resource_bytes = request.resource_spans[0].resource.SerializeToString()
    resource = _length_delimited(1, resource_bytes) + _length_delimited(2, scope)
    body = _length_delimited(1, resource)
    response = post_otlp(api_key.secret, body)
    assert response.status_code == 400, response.content[:500]
    assert b"protobuf" in response.content
    assert not Call.objects.exists()


def test_otlp_json_nested_beyond_the_parser_is_a_400(api_key):
    deep = '{"kvlistValue": {"values": [{"key": "k", "value": ' * 400 + '{"stringValue": "x"}' + "}]}}" * 400
    body = ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "0af7651916cd43dd8448eb211c80319c", '
            '"spanId": "b7ad6b7169203331", "name": "deep", "startTimeUnixNano": "%d", "endTimeUnixNano": "%d", '
            '"attributes": [{"key": "custom.deep", "value": %s}]}]}]}]}'
            % (time.time_ns() - 10**10, time.time_ns() - 10**9, deep)).encode()
    response = post_otlp(api_key.secret, body, content_type="application/json")
    assert 400 <= response.status_code < 500, response.content[:500]


# --- Langfuse ----------------------------------------------------------------------------------

def basic(api_key) -> str:
    return "Basic " + base64.b64encode(f"{api_key.key.public_id}:{api_key.secret}".encode()).decode()


def iso(offset_ms: int = 0) -> str:
    moment = datetime.now(UTC) - timedelta(minutes=2) + timedelta(milliseconds=offset_ms)
    return moment.isoformat().replace("+00:00", "Z")


def langfuse_post(api_key, payload, *, raw: bytes | None = None):
    if raw is not None:
        return Client().generic("POST", "/api/public/ingestion", raw, content_type="application/json",
                                HTTP_AUTHORIZATION=basic(api_key))
    return Client().post("/api/public/ingestion", payload, content_type="application/json",
                         HTTP_AUTHORIZATION=basic(api_key))


def langfuse_batch(text: str, serial: int) -> dict:
    trace_id, generation_id = f"lf-trace-{serial}", f"lf-gen-{serial}"
    return {"batch": [
        {"id": f"e{serial}-1", "type": "trace-create", "timestamp": iso(), "body": {
            "id": trace_id, "timestamp": iso(), "name": text, "userId": text, "sessionId": text, "tags": [text],
            "release": text, "environment": "production", "input": text, "metadata": {"note": text}}},
        {"id": f"e{serial}-2", "type": "generation-create", "timestamp": iso(10), "body": {
            "id": generation_id, "traceId": trace_id, "name": text, "startTime": iso(10), "endTime": iso(900),
            "model": text, "input": [{"role": "user", "content": text}], "output": text,
            "metadata": {"note": text}, "level": "ERROR", "statusMessage": text, "promptName": text,
            "usage": {"input": 10, "output": 2}}},
    ]}


def test_langfuse_fields_store_hostile_text_as_sent(storing, api_key):
    for serial, (label, text) in enumerate(STORABLE.items()):
        response = langfuse_post(api_key, langfuse_batch(text, serial))
        assert response.status_code < 500, (label, response.content)
        answer = response.json()
        assert not answer["errors"], (label, answer)
        call = Call.objects.get(project=storing, span_id=f"lf-gen-{serial}")
        content = CallContent.objects.get(call_id=call.id)
        expected = stored_form(text)
        assert (call.name, call.model, call.error_message, call.prompt_name) == (expected,) * 4, label
        assert content.output == expected and content.input == [{"role": "user", "content": expected}], label
        assert (call.metadata or content.metadata)["note"] == expected, label
        trace = Trace.objects.get(project=storing, trace_id=f"lf-trace-{serial}")
        assert (trace.name, trace.user_id, trace.session_id, trace.release) == (expected,) * 4, label
        assert trace.tags == [expected] and trace.input == expected and trace.metadata["note"] == expected, label


@pytest.mark.parametrize("surrogate", LONE_SURROGATES)
def test_langfuse_lone_surrogates_are_a_400(api_key, surrogate):
    body = json.dumps(langfuse_batch("SURROGATE-HERE", 0)).replace("SURROGATE-HERE", LONE_SURROGATES[surrogate])
    response = langfuse_post(api_key, None, raw=body.encode())
    assert response.status_code == 400, response.content
    assert b"surrogate pair" in response.content
    assert not Call.objects.exists()


def test_langfuse_100k_values_and_deep_metadata_never_fail(storing, api_key):
    huge = "z" * 100_000
    deep: dict = {"leaf": "bottom"}
    for _ in range(100):
        deep = {"level": deep}
    batch = langfuse_batch("ok", 99)
    batch["batch"][1]["body"].update(input=huge, output=huge, metadata={"note": huge, "deep": deep})
    response = langfuse_post(api_key, batch)
    assert response.status_code < 500, response.content[:500]
    answer = response.json()
    for error in answer["errors"]:
        assert error["status"] < 500 and error["message"], error
    if not answer["errors"]:
        call = Call.objects.get(project=storing, span_id="lf-gen-99")
        assert CallContent.objects.get(call_id=call.id).output == huge
