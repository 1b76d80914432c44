"""Real clients against the real server: the OpenTelemetry SDK's OTLP exporter, the openai SDK
instrumented by opentelemetry-instrumentation-openai-v2, and the Langfuse SDK."""

from __future__ import annotations

import base64

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from observatory.calls.models import Call, CallContent, Score, Trace
from tests.fakes.openai_server import COMPLETION_TOKENS, PROMPT_TOKENS, FakeOpenAI

pytestmark = pytest.mark.django_db(transaction=True)


def tracer_provider(endpoint: str, headers: dict) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "shop", "deployment.environment.name": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint, headers=headers, compression=Compression.Gzip)))
    return provider


def test_opentelemetry_sdk_exporter_with_bearer_auth(live_server, api_key):
    provider = tracer_provider(f"{live_server.url}/v1/traces", {"Authorization": f"Bearer {api_key.secret}"})
    tracer = provider.get_tracer("shop.checkout")
    with tracer.start_as_current_span("checkout") as root:
        with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
            chat.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                 "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 50,
                                 "gen_ai.usage.output_tokens": 7})
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    calls = {call.name: call for call in Call.objects.filter(trace_id=trace_id)}
    assert calls["chat gpt-4o-mini"].parent_span_id == format(root.get_span_context().span_id, "016x")
    assert calls["chat gpt-4o-mini"].cost_source == "catalog" and calls["checkout"].kind == "span"
    assert calls["checkout"].environment == "test"


def test_opentelemetry_sdk_exporter_to_the_langfuse_path_with_basic_auth(live_server, api_key):
    credentials = base64.b64encode(f"{api_key.key.public_id}:{api_key.secret}".encode()).decode()
    provider = tracer_provider(f"{live_server.url}/api/public/otel/v1/traces", {"Authorization": f"Basic {credentials}"})
    with provider.get_tracer("t").start_as_current_span("hello"):
        pass
    provider.shutdown()
    assert Call.objects.filter(name="hello").count() == 1


@pytest.fixture
def instrumented_openai(live_server, api_key, monkeypatch):
    """The official OpenAI instrumentation, capturing content, exporting to Observatory."""
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    provider = tracer_provider(f"{live_server.url}/v1/traces", {"Authorization": f"Bearer {api_key.secret}"})
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    with FakeOpenAI() as fake:
        yield openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0), provider
    instrumentor.uninstrument()
    provider.shutdown()


def test_openai_sdk_instrumented_with_opentelemetry(instrumented_openai):
    client, provider = instrumented_openai
    messages = [{"role": "user", "content": "Where is my parcel?"}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                            stream_options={"include_usage": True})
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "Hello there!"
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hit the limit"}],
                                   max_tokens=18)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "please fail"}])
    provider.force_flush()

    calls = list(Call.objects.order_by("start_time"))
    assert len(calls) == 4 and {call.kind for call in calls} == {"generation"}
    plain, streamed, truncated, failed = calls
    for call in (plain, streamed, truncated):
        assert (call.provider, call.model) == ("openai", "gpt-4o-mini-2024-07-18")
        # This instrumentation reports prompt and completion tokens, not the cached part.
        assert (call.input_tokens, call.output_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
        assert call.cost_source == "catalog" and call.cost > 0
    assert plain.finish_reason == streamed.finish_reason == "stop"
    assert truncated.finish_reason == "length"
    # Nor does it report the time to the first chunk (newer GenAI conventions add
    # gen_ai.response.time_to_first_chunk, which test_otlp_dialects covers).
    assert streamed.latency_ms >= 50  # the fake server pauses before the first token
    assert (failed.status, failed.error_type) == ("error", "openai.InternalServerError")
    plain_content = CallContent.objects.get(call_id=plain.id)
    assert "Where is my parcel?" in str(plain_content.input) and "Hello there!" in str(plain_content.output)


def test_langfuse_sdk_unchanged_but_for_host_and_keys(live_server, api_key, project):
    from langfuse import Langfuse, propagate_attributes

    langfuse = Langfuse(public_key=api_key.key.public_id, secret_key=api_key.secret, base_url=live_server.url,
                        environment="staging", release="4.2.0", flush_at=1)
    assert langfuse.auth_check()
    with langfuse.start_as_current_observation(as_type="span", name="handle-request", input={"q": "refund?"}) as root:
        with propagate_attributes(trace_name="support", user_id="user-5", session_id="session-5", tags=["vip"]):
            with langfuse.start_as_current_observation(as_type="generation", name="answer", model="claude-haiku-4-5",
                                                       input=[{"role": "user", "content": "refund?"}]) as generation:
                generation.update(output="Within 30 days.", usage_details={"input": 300, "output": 40},
                                  model_parameters={"temperature": 0})
        root.update(output={"answer": "Within 30 days."})
        trace_id = root.trace_id
    langfuse.create_score(name="helpful", value=1, trace_id=trace_id, data_type="BOOLEAN", score_id="score-lf-1")
    langfuse.flush()
    langfuse.shutdown()

    generation = Call.objects.get(trace_id=trace_id, name="answer")
    assert (generation.kind, generation.model, generation.input_tokens, generation.output_tokens) == (
        "generation", "claude-haiku-4-5", 300, 40)
    assert (generation.environment, generation.release) == ("staging", "4.2.0")
    assert generation.metadata["model_parameters"] == {"temperature": 0}
    assert CallContent.objects.get(call_id=generation.id).output == "Within 30 days."
    trace = Trace.objects.get(project=project, trace_id=trace_id)
    assert (trace.name, trace.user_id, trace.session_id) == ("support", "user-5", "session-5")
    assert "vip" in trace.tags and trace.span_count == 2
    assert Score.objects.get(score_id="score-lf-1").value == 1
