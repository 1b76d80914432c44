"""Property-based tests of every ingest parser: whatever arrives, the answer is never a 500,
and every event answered as accepted is in the database."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from observatory.calls.models import Call
from tests.ingest.otlp_builders import export_request, post_otlp, span

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ACCEPTED_STATUSES = {200, 207, 400, 413, 415}

# Unicode edge cases: NUL, lone-ish and astral characters, right-to-left marks, SQL and template syntax.
nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\x00", "\u202e\u202d", "😀" * 3, "'; DROP TABLE calls_call; --", "{{ 7*7 }}", "{% debug %}",
                     "<script>alert(1)</script>", "\ufeff", "a" * 300, "" ]),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63),
                        st.floats(allow_nan=True, allow_infinity=True), nasty_text)
json_value = st.recursive(json_scalar, lambda children: st.one_of(st.lists(children, max_size=4),
                                                                  st.dictionaries(nasty_text, children, max_size=4)),
                          max_leaves=12)


def moment(offset_seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_seconds)).isoformat()


native_event = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(nasty_text, st.integers()),
        "trace_id": nasty_text,
        "span_id": nasty_text,
        "parent_span_id": nasty_text,
        "name": nasty_text,
        "kind": st.sampled_from(["generation", "span", "tool", "llm", 3]),
        "start_time": st.one_of(st.floats(min_value=-1e20, max_value=1e20).map(lambda x: x),
                                st.integers(min_value=-60 * 86400, max_value=60).map(moment), nasty_text),
        "end_time": st.one_of(st.integers(min_value=-60 * 86400, max_value=60).map(moment), json_scalar),
        "latency_ms": json_scalar,
        "time_to_first_token_ms": json_scalar,
        "provider": nasty_text,
        "model": st.one_of(st.sampled_from(["gpt-4o-mini", "claude-haiku-4-5", "my-model"]), nasty_text),
        "input_tokens": st.one_of(st.integers(min_value=-10, max_value=10**10), json_scalar),
        "output_tokens": st.one_of(st.integers(min_value=0, max_value=10**6), json_scalar),
        "cached_input_tokens": st.integers(min_value=-5, max_value=10**6),
        "cost": st.one_of(st.decimals(allow_nan=True).map(str), json_scalar),
        "status": st.sampled_from(["ok", "error", "failed", None]),
        "tags": st.one_of(st.lists(nasty_text, max_size=5), json_scalar),
        "metadata": st.one_of(st.dictionaries(nasty_text, json_value, max_size=4), json_scalar),
        "input": json_value,
        "output": json_value,
        "unexpected_field": json_value,
    },
)


def _assert_accepted_are_stored(project, results: list[dict]) -> None:
    for result in results:
        if result["status"] in ("accepted", "duplicate"):
            assert Call.objects.filter(project=project, trace_id=result["trace_id"].replace("\x00", "\ufffd"),
                                       span_id=result["span_id"].replace("\x00", "\ufffd")).exists(), result


@PROPERTY_SETTINGS
@given(events=st.lists(native_event, min_size=1, max_size=5), wrap=st.booleans())
def test_native_ingest_never_fails_and_never_loses_an_accepted_event(api_key, project, events, wrap):
    cache.clear()
    body = json.dumps({"events": events} if wrap or len(events) > 1 else events[0], allow_nan=True)
    response = Client().post("/api/v1/events", body, content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {api_key.secret}")
    assert response.status_code in ACCEPTED_STATUSES, response.content
    payload = response.json()
    if "results" in payload:
        _assert_accepted_are_stored(project, payload["results"])


attribute_value = st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(),
                            st.booleans(), nasty_text, st.lists(nasty_text, max_size=3),
                            st.text(max_size=5).map(lambda t: t * 1000))
attribute_keys = st.sampled_from([
    "gen_ai.request.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.response.finish_reasons",
    "gen_ai.input.messages", "gen_ai.usage.cost", "llm.token_count.prompt", "openinference.span.kind", "input.value",
    "langfuse.observation.type", "langfuse.observation.usage_details", "langfuse.observation.completion_start_time",
    "langfuse.trace.name", "langfuse.trace.metadata", "user.id", "session.id", "gen_ai.response.time_to_first_chunk",
    "langfuse.observation.level", "error.type", "custom.anything",
])


@st.composite
def otlp_span_specs(draw) -> dict:
    """A span's parts; times are offsets from the moment the test runs (strategies must not read
    the clock), or absolute junk."""
    return {
        "name": draw(nasty_text),
        "trace_id": draw(st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20))),
        "span_id": draw(st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=10))),
        "parent": draw(st.one_of(st.just(b""), st.binary(max_size=9))),
        "start": draw(st.one_of(st.tuples(st.just("offset"), st.integers(min_value=-40 * 86400, max_value=3600)),
                                st.tuples(st.just("absolute"), st.integers(min_value=0, max_value=2**64 - 1)))),
        "duration_ms": draw(st.floats(min_value=-1000, max_value=10**6)),
        "attributes": draw(st.dictionaries(attribute_keys, attribute_value, max_size=6)),
    }


def build_span(spec: dict, now_ns: int):
    kind, value = spec["start"]
    start_ns = now_ns + value * 10**9 if kind == "offset" else value
    return span(name=spec["name"], trace_id=spec["trace_id"], span_id=spec["span_id"], parent=spec["parent"],
                start_ns=start_ns, duration_ms=spec["duration_ms"], attributes=spec["attributes"])


@PROPERTY_SETTINGS
@given(specs=st.lists(otlp_span_specs(), min_size=1, max_size=5))
def test_otlp_ingest_never_fails_and_stores_what_it_accepts(api_key, project, specs):
    cache.clear()
    try:
        spans = [build_span(spec, time.time_ns()) for spec in specs]
        body = export_request(spans).SerializeToString()
    except (ValueError, OverflowError):  # a value protobuf itself refuses to encode (a negative time)
        return
    before = Call.objects.filter(project=project).count()
    response = post_otlp(api_key.secret, body)
    assert response.status_code in ACCEPTED_STATUSES, response.content
    if response.status_code == 200:
        rejected = ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans
        stored = Call.objects.filter(project=project).count() - before
        distinct = {(s.trace_id, s.span_id, s.start_time_unix_nano) for s in spans}
        # Every span not rejected is stored, except repeats of one identity (stored once).
        assert stored >= len(distinct) - rejected - (len(spans) - len(distinct))
        assert stored <= len(spans) - rejected


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=200))
def test_otlp_ingest_survives_arbitrary_bytes(api_key, body):
    cache.clear()
    assert post_otlp(api_key.secret, body).status_code in ACCEPTED_STATUSES


langfuse_event = st.fixed_dictionaries(
    {"id": nasty_text, "type": st.sampled_from(["trace-create", "span-create", "span-update", "generation-create",
                                                "generation-update", "event-create", "score-create", "sdk-log",
                                                "unknown-type", "observation-create"])},
    optional={"timestamp": st.integers(min_value=-86400 * 40, max_value=60).map(moment),
              "body": st.dictionaries(st.sampled_from(["id", "traceId", "name", "startTime", "endTime", "model",
                                                       "usage", "usageDetails", "costDetails", "value", "dataType",
                                                       "level", "input", "output", "metadata", "sessionId"]),
                                      json_value, max_size=8)},
)


@PROPERTY_SETTINGS
@given(batch=st.lists(langfuse_event, max_size=6))
def test_langfuse_ingestion_never_fails(api_key, batch):
    cache.clear()
    credentials = base64.b64encode(f"{api_key.key.public_id}:{api_key.secret}".encode()).decode()
    response = Client().post("/api/public/ingestion", json.dumps({"batch": batch}, allow_nan=True),
                             content_type="application/json", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert response.status_code in ACCEPTED_STATUSES | {207}, response.content
    if response.status_code == 207:
        body = response.json()
        answered = [item["id"] for item in body["successes"] + body["errors"]]
        assert len(answered) == len(batch)  # every event gets exactly one answer


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
