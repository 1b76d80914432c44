"""Realistic spans in each dialect, as instrumentations send them, and what they become."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from observatory.calls.models import Call, CallContent, Trace
from tests.ingest.otlp_builders import export_request, new_span_id, new_trace_id, post_otlp, span


def send(api_key, spans, **kwargs) -> ExportTraceServiceResponse:
    response = post_otlp(api_key.secret, export_request(spans, **kwargs).SerializeToString())
    assert response.status_code == 200, response.content
    return ExportTraceServiceResponse.FromString(response.content)


def stored(span_id: bytes) -> Call:
    return Call.objects.get(span_id=span_id.hex())


def content(call: Call) -> CallContent:
    return CallContent.objects.get(call_id=call.id)


def test_genai_semantic_conventions(api_key):
    trace_id, root_id, chat_id = new_trace_id(), new_span_id(), new_span_id()
    start = time.time_ns() - 30 * 10**9
    send(api_key, [
        span(name="invoke_agent support", trace_id=trace_id, span_id=root_id, start_ns=start, duration_ms=3000,
             attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"}),
        span(name="chat gpt-4.1-mini", trace_id=trace_id, span_id=chat_id, parent=root_id, start_ns=start + 10**8,
             duration_ms=1800, attributes={
                 "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                 "gen_ai.request.model": "gpt-4.1-mini", "gen_ai.response.model": "gpt-4.1-mini-2025-04-14",
                 "gen_ai.usage.input_tokens": 1500, "gen_ai.usage.output_tokens": 300,
                 "gen_ai.usage.cache_read.input_tokens": 1000, "gen_ai.usage.reasoning.output_tokens": 0,
                 "gen_ai.response.finish_reasons": ["length"], "gen_ai.conversation.id": "conv-9",
                 "gen_ai.request.max_tokens": 300, "gen_ai.request.temperature": 0.2,
                 "gen_ai.response.time_to_first_chunk": 0.42,
                 "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
                 "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]),
                 "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Hello"}],
                                                        "finish_reason": "length"}]),
                 "server.address": "api.openai.com",
             }),
    ], resource={"service.name": "support-bot", "service.version": "2.3.1", "deployment.environment.name": "prod"})
    chat, root = stored(chat_id), stored(root_id)
    assert (root.kind, chat.kind) == ("agent", "generation")
    assert chat.parent_span_id == root_id.hex() and chat.trace_id == trace_id.hex()
    assert (chat.provider, chat.model) == ("openai", "gpt-4.1-mini-2025-04-14")  # the response model wins
    assert (chat.input_tokens, chat.cached_input_tokens, chat.output_tokens) == (1500, 1000, 300)
    # gpt-4.1-mini: 500 uncached x $0.40/M + 1000 cached x $0.10/M + 300 x $1.60/M
    assert chat.cost == Decimal("0.00078") and chat.cost_source == "catalog"
    assert chat.finish_reason == "length" and chat.session_id == "conv-9"
    assert chat.time_to_first_token_ms == pytest.approx(420) and chat.latency_ms == pytest.approx(1800)
    assert (chat.environment, chat.release) == ("prod", "2.3.1")
    assert chat.metadata["model_parameters"] == {"max_tokens": 300, "temperature": 0.2}
    assert chat.metadata["attributes"] == {"server.address": "api.openai.com"}
    stored_content = content(chat)
    assert stored_content.input["system"] == [{"type": "text", "content": "Be brief."}]
    assert stored_content.output[0]["parts"][0]["content"] == "Hello"
    assert Trace.objects.get(trace_id=trace_id.hex()).span_count == 2


def test_older_genai_names_and_message_events(api_key):
    chat_id = new_span_id()
    send(api_key, [span(name="anthropic.chat", trace_id=new_trace_id(), span_id=chat_id, attributes={
        "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-haiku-4-5",
        "gen_ai.usage.prompt_tokens": 200, "gen_ai.usage.completion_tokens": 50,
        # Anthropic's usage counts cache reads apart from input tokens: more cached than input.
        "gen_ai.usage.cache_read_input_tokens": 800,
    }, events=[
        ("gen_ai.user.message", {"content": "Summarise this ticket"}, 1),
        ("gen_ai.choice", {"index": 0, "finish_reason": "end_turn", "message": '{"content": "Done"}'}, 90),
    ])])
    chat = stored(chat_id)
    assert (chat.provider, chat.model, chat.kind) == ("anthropic", "claude-haiku-4-5", "generation")
    assert (chat.input_tokens, chat.cached_input_tokens, chat.output_tokens) == (1000, 800, 50)
    stored_content = content(chat)
    assert stored_content.input == [{"role": "user", "content": "Summarise this ticket"}]
    assert stored_content.output == [{"index": 0, "finish_reason": "end_turn", "message": {"content": "Done"}}]


def test_openllmetry_indexed_prompt_and_completion_attributes(api_key):
    chat_id = new_span_id()
    send(api_key, [span(name="openai.chat", trace_id=new_trace_id(), span_id=chat_id, attributes={
        "gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-4o-mini", "llm.request.type": "chat",
        "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "You are terse.",
        "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "Ping?",
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Pong.",
        "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.usage.prompt_tokens": 12, "gen_ai.usage.completion_tokens": 2, "llm.usage.total_tokens": 14,
    })])
    chat = stored(chat_id)
    assert chat.total_tokens == 14 and chat.provider == "OpenAI" and chat.cost_source == "catalog"
    stored_content = content(chat)
    assert stored_content.input == [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Ping?"}]
    assert stored_content.output == [{"role": "assistant", "content": "Pong.", "finish_reason": "stop"}]


def test_openinference_spans(api_key):
    trace_id, chain_id, retriever_id, llm_id = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
    send(api_key, [
        span(name="RAG", trace_id=trace_id, span_id=chain_id, duration_ms=2500, attributes={
            "openinference.span.kind": "CHAIN", "input.value": "What is our refund policy?",
            "output.value": "30 days.", "session.id": "s-42", "user.id": "u-7",
            "metadata": json.dumps({"feature_flag": "rag-v2"}), "tag.tags": ["rag", "beta"],
        }),
        span(name="retrieve", trace_id=trace_id, span_id=retriever_id, parent=chain_id, attributes={
            "openinference.span.kind": "RETRIEVER", "input.value": "refund policy",
            "retrieval.documents.0.document.content": "Refunds within 30 days.",
        }),
        span(name="ChatCompletion", trace_id=trace_id, span_id=llm_id, parent=chain_id, duration_ms=1200, attributes={
            "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "llm.provider": "openai",
            "llm.token_count.prompt": 900, "llm.token_count.completion": 40, "llm.token_count.total": 940,
            "llm.token_count.prompt_details.cache_read": 400,
            "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "Refund policy?",
            "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "30 days.",
            "llm.invocation_parameters": json.dumps({"temperature": 0}),
            "llm.cost.prompt": 0.0015, "llm.cost.completion": 0.0004,
            "llm.prompt_template.version": "v3",
        }),
    ])
    chain, retriever, llm = stored(chain_id), stored(retriever_id), stored(llm_id)
    assert (chain.kind, retriever.kind, llm.kind) == ("chain", "retriever", "generation")
    assert (chain.session_id, chain.user_id, chain.tags) == ("s-42", "u-7", ["rag", "beta"])
    assert chain.metadata["feature_flag"] == "rag-v2"
    assert content(chain).input == "What is our refund policy?"
    assert (llm.model, llm.provider, llm.input_tokens, llm.cached_input_tokens, llm.output_tokens) == (
        "gpt-4o", "openai", 900, 400, 40)
    assert (llm.cost, llm.cost_source) == (Decimal("0.0019"), "client")  # llm.cost.* is the client's figure
    assert llm.prompt_version == "v3" and llm.metadata["model_parameters"] == {"temperature": 0}
    assert content(llm).output == [{"role": "assistant", "content": "30 days."}]


def test_langfuse_attributes(api_key):
    trace_id, root_id, generation_id = new_trace_id(), new_span_id(), new_span_id()
    start = time.time_ns() - 20 * 10**9
    send(api_key, [
        span(name="checkout-assistant", trace_id=trace_id, span_id=root_id, start_ns=start, duration_ms=4000,
             attributes={
                 "langfuse.observation.type": "span", "langfuse.trace.name": "Checkout assistant",
                 "langfuse.trace.tags": ["checkout"], "langfuse.trace.input": json.dumps({"cart": 3}),
                 "langfuse.trace.output": json.dumps({"ok": True}), "langfuse.trace.metadata.plan": "pro",
                 "user.id": "user-1", "session.id": "session-1", "langfuse.environment": "production",
                 "langfuse.release": "2026.11.4",
             }),
        span(name="llm-call", trace_id=trace_id, span_id=generation_id, parent=root_id, start_ns=start + 10**8,
             duration_ms=2000, error="upstream timeout", attributes={
                 "langfuse.observation.type": "generation", "langfuse.observation.model.name": "claude-sonnet-4-5",
                 "langfuse.observation.usage_details": json.dumps({"input": 1000, "input_cached_tokens": 2000,
                                                                   "output": 150}),
                 "langfuse.observation.cost_details": json.dumps({"input": 0.0036, "output": 0.00225}),
                 # Older SDKs send it JSON-quoted, newer ones as a plain ISO string.
                 "langfuse.observation.completion_start_time": json.dumps(
                     datetime.fromtimestamp((start + 10**8) / 1e9 + 0.6, UTC).isoformat().replace("+00:00", "Z")),
                 "langfuse.observation.level": "ERROR", "langfuse.observation.status_message": "timeout after 2s",
                 "langfuse.observation.input": json.dumps([{"role": "user", "content": "Apply coupon"}]),
                 "langfuse.observation.output": json.dumps({"role": "assistant", "content": "Applied"}),
                 "langfuse.observation.prompt.name": "checkout", "langfuse.observation.prompt.version": 4,
                 "langfuse.observation.metadata.ab_bucket": "B",
                 "langfuse.observation.model.parameters": json.dumps({"max_tokens": 512}),
             }),
    ])
    generation = stored(generation_id)
    assert (generation.kind, generation.model) == ("generation", "claude-sonnet-4-5")
    assert (generation.input_tokens, generation.cached_input_tokens, generation.output_tokens) == (3000, 2000, 150)
    assert generation.cost == Decimal("0.00585") and generation.cost_source == "client"
    assert generation.status == "error" and generation.error_message == "timeout after 2s"
    assert generation.time_to_first_token_ms == pytest.approx(600, abs=1)
    assert (generation.prompt_name, generation.prompt_version) == ("checkout", "4")
    assert generation.metadata["ab_bucket"] == "B" and generation.metadata["model_parameters"] == {"max_tokens": 512}
    assert content(generation).input == [{"role": "user", "content": "Apply coupon"}]
    trace = Trace.objects.get(trace_id=trace_id.hex())
    assert trace.name == "Checkout assistant" and trace.tags == ["checkout"]
    assert (trace.input, trace.output, trace.metadata) == ({"cart": 3}, {"ok": True}, {"plan": "pro"})
    assert (trace.user_id, trace.session_id, trace.environment, trace.release) == (
        "user-1", "session-1", "production", "2026.11.4")
    assert trace.error_count == 1


def test_openlit_cost_and_time_to_first_token(api_key):
    chat_id = new_span_id()
    send(api_key, [span(name="openai.chat.completions", trace_id=new_trace_id(), span_id=chat_id, duration_ms=900,
                        attributes={"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
                                    "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5,
                                    "gen_ai.usage.cost": 0.000075, "gen_ai.server.time_to_first_token": 0.25},
                        events=[("gen_ai.content.prompt", {"gen_ai.prompt": "hello"}, 1),
                                ("gen_ai.content.completion", {"gen_ai.completion": "hi"}, 800)])])
    chat = stored(chat_id)
    assert (chat.cost, chat.cost_source) == (Decimal("0.000075"), "client")
    assert chat.time_to_first_token_ms == pytest.approx(250)
    assert (content(chat).input, content(chat).output) == (["hello"], ["hi"])


def test_exception_events_give_the_error_type(api_key):
    span_id = new_span_id()
    send(api_key, [span(name="chat", trace_id=new_trace_id(), span_id=span_id, error="Rate limit reached",
                        attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"},
                        events=[("exception", {"exception.type": "openai.RateLimitError",
                                               "exception.message": "429"}, 5)])])
    call = stored(span_id)
    assert (call.status, call.error_type, call.error_message) == ("error", "openai.RateLimitError", "Rate limit reached")


def test_plain_spans_are_kept_for_the_waterfall(api_key):
    trace_id, http_id, db_id = new_trace_id(), new_span_id(), new_span_id()
    send(api_key, [span(name="GET /orders", trace_id=trace_id, span_id=http_id, attributes={"http.method": "GET"}),
                   span(name="SELECT orders", trace_id=trace_id, span_id=db_id, parent=http_id,
                        attributes={"db.system": "postgresql"})])
    assert stored(http_id).kind == stored(db_id).kind == "span"
    assert stored(db_id).cost_source == "none" and stored(db_id).metadata["attributes"] == {"db.system": "postgresql"}
