"""Fixtures for the dashboard pages: logged-in clients per persona, and a project with calls
whose every client-controlled text is an XSS payload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from observatory.calls.records import ScoreRecord, TraceAnnotation
from observatory.calls.services import calls_write
from observatory.calls.updates import scores_write, traces_annotate
from observatory.reliability.loops import loops_detect
from observatory.reliability.models import ReliabilitySettings
from observatory.tenancy.models import RedactionMode
from tests.records import record

SCRIPT = "<script>alert('xss')</script>"
IMG = '<img src=x onerror="alert(1)">'
PAYLOADS = (SCRIPT, IMG)
# Prompt text only roles allowed to read prompts may see.
SECRET_PROMPT = "Customer 7781 asks about the Zephyr merger"
SECRET_COMPLETION = "The Zephyr merger closes in March"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def pages_project(project):
    """Calls over the last two days: a normal trace with prompt content, an erroring one, and a
    trace whose names, labels, metadata, content, error and feedback are all payloads."""
    now = datetime.now(UTC)
    project.redaction_mode = RedactionMode.STORE  # content as sent, so payloads reach the pages intact
    project.save()
    normal = [
        record(trace_id="trace-ok", span_id="root", kind="chain", name="answer-question", model=None,
               provider=None, input_tokens=0, output_tokens=0, start_time=now - timedelta(hours=2),
               latency_ms=2500.0, user_id="alice", session_id="sess-1", feature="support-chat"),
        record(trace_id="trace-ok", span_id="gen", parent_span_id="root", name="support-chat.completion",
               start_time=now - timedelta(hours=2) + timedelta(milliseconds=100), latency_ms=2000.0,
               time_to_first_token_ms=400.0, finish_reason="stop", user_id="alice", session_id="sess-1",
               feature="support-chat", prompt_name="support", prompt_version="v1",
               input=[{"role": "user", "content": SECRET_PROMPT}], output=SECRET_COMPLETION),
        record(trace_id="trace-err", span_id="gen", name="classify", model="gpt-4o", finish_reason=None,
               status="error", error_type="RateLimitError", error_message="429 slow down",
               start_time=now - timedelta(hours=20), user_id="bob", feature="classify"),
        record(trace_id="trace-long", span_id="gen", name="summarize", model="gpt-4o", finish_reason="length",
               start_time=now - timedelta(hours=30), latency_ms=9000.0, user_id="bob", feature="summarize",
               prompt_name="support", prompt_version="v2", cost=Decimal("0.25")),
        record(trace_id="trace-unpriced", span_id="gen", name="local", model="my-finetune", provider="vllm",
               start_time=now - timedelta(hours=3), user_id="carol", feature="classify"),
    ]
    hostile = [
        record(trace_id="trace-xss", span_id=f"x{index}", name=payload, model=payload, provider=payload,
               feature=payload, environment=payload, user_id=payload, session_id=payload, finish_reason=payload,
               prompt_name=payload, prompt_version=payload, status="error", error_type=payload,
               error_message=payload, metadata={"note": payload, payload: "key"}, tags=[payload],
               input=[{"role": payload, "content": payload}], output={"text": payload},
               fallback_from_provider=payload, fallback_from_model=payload, retry_of=payload,
               start_time=now - timedelta(hours=1, minutes=index))
        for index, payload in enumerate(PAYLOADS)
    ]
    calls_write(project=project, records=normal + hostile)
    # The hostile trace is also flagged as a runaway loop, so its name reaches the loop lists.
    ReliabilitySettings.objects.create(project=project, loop_max_spans=len(PAYLOADS) - 1)
    loops_detect(project=project)
    traces_annotate(project=project, annotations=[TraceAnnotation(trace_id="trace-xss", name=SCRIPT, input=IMG,
                                                                  output=SCRIPT)])
    scores_write(project=project, scores=[
        ScoreRecord(score_id="s1", name="user-feedback", data_type="boolean", value=1.0, trace_id="trace-ok",
                    comment="Great answer about Zephyr", timestamp=now - timedelta(hours=1)),
        ScoreRecord(score_id="s2", name=SCRIPT, data_type="numeric", value=0.2, trace_id="trace-xss",
                    span_id="x0", comment=IMG, timestamp=now - timedelta(minutes=50)),
    ])
    return project
