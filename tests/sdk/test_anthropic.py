"""observe_anthropic: the real anthropic client against a local fake of the Messages API,
recorded into the real app."""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from observatory_sdk import observe_anthropic

from observatory.calls.models import Call, CallContent
from tests.sdk import fake_llm
from tests.sdk.conftest import assert_failure_recorded, only_call

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
SYSTEM = "Answer in one sentence."
# Anthropic counts cache reads and writes apart from input_tokens; Observatory's
# input_tokens is all of them.
ALL_INPUT_TOKENS = sum(fake_llm.ANTHROPIC_USAGE.values())


@pytest.fixture
def anthropic_client(llm_server):
    return anthropic.Anthropic(base_url=llm_server.url, api_key="sk-ant-test", max_retries=0)


def assert_usage_recorded(call: Call, output_tokens: int) -> None:
    assert (call.input_tokens, call.cached_input_tokens, call.cache_write_tokens, call.output_tokens) == (
        ALL_INPUT_TOKENS,
        fake_llm.ANTHROPIC_USAGE["cache_read_input_tokens"],
        fake_llm.ANTHROPIC_USAGE["cache_creation_input_tokens"],
        output_tokens,
    )


def test_a_message_is_recorded_with_cache_tokens_and_the_system_prompt(anthropic_client, observatory, project):
    client = observe_anthropic(anthropic_client, observatory, feature="geography")
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=256, system=SYSTEM, messages=QUESTION)
    assert message.content[0].text == fake_llm.ANSWER
    assert observatory.flush(timeout=30)

    call = only_call(project)
    assert (call.provider, call.model, call.finish_reason, call.feature) == (
        "anthropic", "claude-haiku-4-5-20251001", "end_turn", "geography")
    assert_usage_recorded(call, len(fake_llm.ANSWER_TOKENS))
    assert call.cost_source == "catalog" and call.cost > 0
    content = CallContent.objects.get(call_id=call.id)
    assert content.input == [{"role": "system", "content": SYSTEM}, *QUESTION]
    assert content.output == fake_llm.ANSWER


def test_a_message_cut_off_by_max_tokens(anthropic_client, observatory, project):
    observe_anthropic(anthropic_client, observatory).messages.create(
        model="claude-haiku-4-5", max_tokens=2, messages=QUESTION
    )
    assert observatory.flush(timeout=30)

    call = only_call(project)
    assert (call.finish_reason, call.output_tokens) == ("max_tokens", 2)
    assert call.metadata["request"] == {"max_tokens": 2}


def test_a_raw_event_stream_is_recorded(anthropic_client, observatory, project):
    client = observe_anthropic(anthropic_client, observatory)
    events = list(client.messages.create(model="claude-haiku-4-5", max_tokens=256, messages=QUESTION, stream=True))
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    assert observatory.flush(timeout=30)

    call = only_call(project)
    assert_usage_recorded(call, len(fake_llm.ANSWER_TOKENS))
    assert call.finish_reason == "end_turn"
    assert call.time_to_first_token_ms is not None and call.time_to_first_token_ms <= call.latency_ms
    assert CallContent.objects.get(call_id=call.id).output == fake_llm.ANSWER


def test_the_stream_helper_is_recorded(anthropic_client, observatory, project):
    client = observe_anthropic(anthropic_client, observatory)
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=3, messages=QUESTION) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "The capital of" and final.stop_reason == "max_tokens"
    assert observatory.flush(timeout=30)

    call = only_call(project)
    assert (call.finish_reason, call.output_tokens) == ("max_tokens", 3)
    assert call.time_to_first_token_ms is not None
    assert "stream_incomplete" not in call.metadata


WEATHER_TOOL = {"name": "get_weather", "input_schema": {"type": "object"}}


def test_tool_use_is_recorded_as_content_blocks(anthropic_client, observatory, project):
    client = observe_anthropic(anthropic_client, observatory)
    client.messages.create(model="claude-haiku-4-5", max_tokens=256, messages=QUESTION, tools=[WEATHER_TOOL])
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=256, messages=QUESTION,
                                tools=[WEATHER_TOOL]) as stream:
        stream.until_done()
    assert observatory.flush(timeout=30)

    plain, streamed = (CallContent.objects.get(call_id=call.id).output
                       for call in Call.objects.filter(project=project).order_by("start_time"))
    assert plain == [
        {"type": "text", "text": fake_llm.ANTHROPIC_TOOL_PREAMBLE},
        {"type": "tool_use", "id": "toolu_fake", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    assert streamed == [
        {"type": "text", "text": fake_llm.ANTHROPIC_TOOL_PREAMBLE},
        {"type": "tool_use", "name": "get_weather", "input": fake_llm.TOOL_ARGUMENTS},
    ]
    assert set(Call.objects.filter(project=project).values_list("finish_reason", flat=True)) == {"tool_use"}


def test_a_rate_limited_call_is_recorded_as_an_error_and_the_exception_reaches_the_caller(
    anthropic_client, observatory, project
):
    client = observe_anthropic(anthropic_client, observatory)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="claude-overloaded", max_tokens=256, messages=QUESTION)
    assert observatory.flush(timeout=30)

    assert_failure_recorded(project, error_type="RateLimitError", model="claude-overloaded",
                            message="exceeded your rate limit", http_status=429)


def test_the_async_stream_helper_nests_under_a_span(llm_server, observatory, project):
    async_client = anthropic.AsyncAnthropic(base_url=llm_server.url, api_key="sk-ant-test", max_retries=0)
    client = observe_anthropic(async_client, observatory)

    async def ask():
        with observatory.trace("research", user_id="user-3"), observatory.span("draft", kind="agent") as span:
            async with client.messages.stream(model="claude-haiku-4-5", max_tokens=256, messages=QUESTION) as stream:
                text = await stream.get_final_text()
        await async_client.close()
        return text, span

    text, span = asyncio.run(ask())
    assert text == fake_llm.ANSWER
    assert observatory.flush(timeout=30)

    generation = Call.objects.get(project=project, kind="generation")
    assert (generation.trace_id, generation.parent_span_id, generation.user_id) == (
        span.trace_id, span.span_id, "user-3")
    assert_usage_recorded(generation, len(fake_llm.ANSWER_TOKENS))
    assert Call.objects.filter(project=project, trace_id=span.trace_id).count() == 3
