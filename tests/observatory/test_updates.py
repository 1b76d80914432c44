from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError

from observatory.calls.models import Call, CallContent, ChangedMinute, Score, Trace
from observatory.calls.records import CallPatch, ScoreRecord, TraceAnnotation
from observatory.calls.services import calls_write
from observatory.calls.updates import calls_patch, scores_write, traces_annotate
from observatory.tenancy.models import RedactionMode
from tests.records import record

START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def test_an_explicit_trace_name_wins_whichever_arrives_first(project):
    calls_write(project=project, records=[record(trace_id="a", span_id="root", kind="span", name="root-span",
                                                 start_time=START)])
    traces_annotate(project=project, annotations=[TraceAnnotation(trace_id="a", name="checkout")])
    traces_annotate(project=project, annotations=[TraceAnnotation(trace_id="b", name="search", timestamp=START)])
    calls_write(project=project, records=[record(trace_id="b", span_id="root", kind="span", name="root-span",
                                                 start_time=START + timedelta(seconds=1))])
    assert Trace.objects.get(trace_id="a").name == "checkout"
    b = Trace.objects.get(trace_id="b")
    assert b.name == "search" and b.span_count == 1 and b.start_time == START


def test_annotation_merges_tags_and_metadata_and_keeps_unsaid_fields(project):
    traces_annotate(project=project, annotations=[TraceAnnotation(trace_id="t", user_id="u1", tags=["a"],
                                                                  metadata={"plan": "pro"}, input="question")])
    traces_annotate(project=project, annotations=[TraceAnnotation(trace_id="t", session_id="s1", tags=["b"],
                                                                  metadata={"region": "eu"}, output="answer")])
    trace = Trace.objects.get(trace_id="t")
    assert (trace.user_id, trace.session_id) == ("u1", "s1")
    assert sorted(trace.tags) == ["a", "b"] and trace.metadata == {"plan": "pro", "region": "eu"}
    assert (trace.input, trace.output) == ("question", "answer")
    assert trace.span_count == 0  # an annotation is not a span


def test_trace_content_follows_the_projects_redaction_mode(project):
    project.redaction_mode = RedactionMode.DROP
    project.save()
    traces_annotate(project=project, annotations=[TraceAnnotation(trace_id="t", input="mail a@b.example",
                                                                  metadata={"who": "a@b.example"})])
    trace = Trace.objects.get(trace_id="t")
    assert trace.input is None and trace.metadata == {"who": "[EMAIL]"}


@pytest.mark.parametrize("mode, stored", [
    (RedactionMode.STORE, "call me at jane@example.com"),
    (RedactionMode.MASK, "call me at [EMAIL]"),
    (RedactionMode.DROP, "call me at [EMAIL]"),
])
def test_score_comments_follow_the_projects_redaction_mode(project, mode, stored):
    project.redaction_mode = mode
    project.save()
    scores_write(project=project, scores=[ScoreRecord(score_id="s1", name="helpful", data_type="boolean", value=0,
                                                       trace_id="t", timestamp=datetime.now(UTC),
                                                       comment="call me at jane@example.com")])
    assert Score.objects.get(score_id="s1").comment == stored


def test_a_score_sent_again_replaces_the_first(project):
    now = datetime.now(UTC)
    scores_write(project=project, scores=[ScoreRecord(score_id="s1", name="helpful", data_type="boolean", value=0,
                                                      trace_id="t", timestamp=now)])
    scores_write(project=project, scores=[ScoreRecord(score_id="s1", name="helpful", data_type="boolean", value=1,
                                                      trace_id="t", timestamp=now),
                                          ScoreRecord(score_id="s2", name="tone", data_type="categorical",
                                                      string_value="friendly", session_id="sess", timestamp=now)])
    assert Score.objects.count() == 2
    assert Score.objects.get(score_id="s1").value == 1
    assert Score.objects.get(score_id="s2").session_id == "sess"


def test_a_score_needs_a_subject_and_a_value_of_its_type(project):
    with pytest.raises(IntegrityError):
        scores_write(project=project, scores=[ScoreRecord(score_id="x", name="n", data_type="numeric", value=1,
                                                          timestamp=datetime.now(UTC))])


def test_patch_finishes_a_generation_and_updates_its_trace(project):
    calls_write(project=project, records=[
        record(trace_id="t", span_id="g", start_time=START, latency_ms=None, model="gpt-4o", input_tokens=0,
               output_tokens=0, input=[{"role": "user", "content": "hi"}]),
    ])
    result = calls_patch(project=project, patches=[CallPatch(
        trace_id="t", span_id="g", end_time=START + timedelta(seconds=2), input_tokens=1000, output_tokens=100,
        finish_reason="stop", output="hello", metadata={"temperature": 0},
    )])
    assert result.applied == [0]
    call = Call.objects.get(span_id="g")
    assert call.latency_ms == pytest.approx(2000) and call.total_tokens == 1100
    assert call.cost == Decimal("0.0035") and call.cost_source == "catalog"  # 1000 x $2.5/M + 100 x $10/M
    assert call.finish_reason == "stop" and call.metadata == {"temperature": 0}
    content = CallContent.objects.get(call_id=call.id)
    assert content.input == [{"role": "user", "content": "hi"}] and content.output == "hello"
    trace = Trace.objects.get(trace_id="t")
    assert (trace.input_tokens, trace.output_tokens, trace.cost) == (1000, 100, Decimal("0.0035"))
    assert ChangedMinute.objects.filter(minute=START.replace(second=0)).exists()


def test_patching_twice_leaves_the_same_state(project):
    calls_write(project=project, records=[record(trace_id="t", span_id="g", start_time=START)])
    patch = CallPatch(trace_id="t", span_id="g", output_tokens=500, status="error", error_type="Timeout")
    calls_patch(project=project, patches=[patch])
    first = Call.objects.values().get(span_id="g")
    calls_patch(project=project, patches=[patch])
    assert Call.objects.values().get(span_id="g") == first
    assert Trace.objects.get(trace_id="t").error_count == 1


def test_a_client_cost_survives_a_patch_without_one(project):
    calls_write(project=project, records=[record(trace_id="t", span_id="g", cost=Decimal("0.42"))])
    calls_patch(project=project, patches=[CallPatch(trace_id="t", span_id="g", output_tokens=9999)])
    call = Call.objects.get(span_id="g")
    assert (call.cost, call.cost_source) == (Decimal("0.42"), "client")


def test_patch_of_an_unknown_call_is_reported(project):
    result = calls_patch(project=project, patches=[CallPatch(trace_id="nope", span_id="nope", output_tokens=1)])
    assert result.missing == [0] and result.applied == []


def test_patch_merges_into_large_metadata_stored_with_the_content(project):
    big = {"document": "x" * 5000}
    calls_write(project=project, records=[record(trace_id="t", span_id="g", metadata=big)])
    calls_patch(project=project, patches=[CallPatch(trace_id="t", span_id="g", metadata={"reviewed": True})])
    call = Call.objects.get(span_id="g")
    assert CallContent.objects.get(call_id=call.id).metadata == {**big, "reviewed": True}
