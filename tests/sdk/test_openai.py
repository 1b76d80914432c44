"""observe_openai: the real openai client against a local fake of the API, recorded into
the real app. What the application sees must not change; what is stored must be right."""

from __future__ import annotations

import asyncio

import openai
import pytest
from observatory_sdk import observe_openai

from observatory.calls.models import Call, CallContent
from tests.sdk import fake_llm
from tests.sdk.conftest import assert_failure_recorded, only_call

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def openai_client(llm_server):
    return openai.OpenAI(base_url=f"{llm_server.url}/v1", api_key="sk-test", max_retries=0)


def content_of(call: Call) -> CallContent:
    return CallContent.objects.get(call_id=call.id)


def test_a_completion_is_recorded_with_tokens_model_and_content(openai_client, observatory, project):
    client = observe_openai(openai_client, observatory, feature="geography", user_id="user-7")
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, temperature=0.2)
    assert completion.choices[0].message.content == fake_llm.ANSWER
    assert observatory.flush(timeout=30)

    call = only_call(project)
    assert (call.provider, call.model, call.kind) == ("openai", "gpt-4o-mini-2024-07-18", "generation")
    assert (call.input_tokens, call.cached_input_tokens, call.output_tokens) == (
        fake_llm.OPENAI_PROMPT_TOKENS, fake_llm.OPENAI_CACHED_TOKENS, len(fake_llm.ANSWER_TOKENS))
    assert (call.finish_reason, call.status, call.feature, call.user_id) == ("stop", "ok", "geography", "user-7")
    assert call.latency_ms > 0 and call.time_to_first_token_ms is None
    assert call.cost_source == "catalog" and call.cost > 0
    assert call.metadata["request"] == {"temperature": 0.2}
    # The client's own timeout (max_retries=0, default 600 s read timeout), no limit, no stream.
    assert (call.timeout_ms, call.max_tokens, call.streamed) == (600_000, None, False)
    content = content_of(call)
    assert (content.input, content.output) == (QUESTION, fake_llm.ANSWER)


def test_reasoning_tokens_are_recorded(openai_client, observatory, project):
    observe_openai(openai_client, observatory).chat.completions.create(model="o4-mini", messages=QUESTION)
    assert observatory.flush(timeout=30)

    call = only_call(project)
    assert call.reasoning_tokens == fake_llm.REASONING_TOKENS
    assert call.output_tokens == fake_llm.REASONING_TOKENS + len(fake_llm.ANSWER_TOKENS)


def test_a_cut_off_answer_is_recorded_with_finish_reason_length(openai_client, observatory, project):
    client = observe_openai(openai_client, observatory)
    client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, max_completion_tokens=3)
    assert observatory.flush(timeout=30)

    call = only_call(project)
    assert (call.finish_reason, call.output_tokens, call.max_tokens) == ("length", 3, 3)
    assert content_of(call).output == "The capital of"


def test_a_stream_is_recorded_with_usage_and_time_to_first_token(openai_client, observatory, project, llm_server):
    client = observe_openai(openai_client, observatory)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True))

    # Usage was asked for on the application's behalf, and its extra chunk kept from it.
    assert llm_server.requests[-1]["stream_options"] == {"include_usage": True}
    assert all(chunk.choices for chunk in chunks)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == fake_llm.ANSWER
    assert observatory.flush(timeout=30)

    call = only_call(project)
    assert (call.input_tokens, call.output_tokens, call.finish_reason) == (
        fake_llm.OPENAI_PROMPT_TOKENS, len(fake_llm.ANSWER_TOKENS), "stop")
    assert call.time_to_first_token_ms is not None and call.time_to_first_token_ms <= call.latency_ms
    assert call.streamed is True
    assert "stream_incomplete" not in call.metadata
    assert content_of(call).output == fake_llm.ANSWER


def test_a_stream_whose_caller_asked_for_usage_keeps_the_usage_chunk(openai_client, observatory, project):
    client = observe_openai(openai_client, observatory)
    with client.chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)

    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == fake_llm.OPENAI_PROMPT_TOKENS
    assert observatory.flush(timeout=30)
    assert only_call(project).output_tokens == len(fake_llm.ANSWER_TOKENS)


def test_a_stream_cut_off_by_max_tokens_and_left_early(openai_client, observatory, project):
    client = observe_openai(openai_client, observatory, stream_usage=False)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True, max_tokens=4,
                                            timeout=12.5)
    next(stream)
    next(stream)
    stream.close()
    assert observatory.flush(timeout=30)

    call = only_call(project)
    assert call.metadata["stream_incomplete"] is True
    assert (call.max_tokens, call.timeout_ms, call.streamed) == (4, 12_500, True)
    assert (call.output_tokens, call.finish_reason) == (0, None)  # no usage asked for, none read
    assert content_of(call).output == "The"


WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def test_a_tool_call_is_recorded_as_the_output(openai_client, observatory, project):
    client = observe_openai(openai_client, observatory)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, tools=[WEATHER_TOOL])
    assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert observatory.flush(timeout=30)

    call = only_call(project)
    assert call.finish_reason == "tool_calls"
    output = content_of(call).output
    assert output["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": fake_llm.TOOL_ARGUMENTS}


def test_a_streamed_tool_call_is_put_back_together(openai_client, observatory, project):
    client = observe_openai(openai_client, observatory)
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, tools=[WEATHER_TOOL], stream=True):
        pass
    assert observatory.flush(timeout=30)

    call = only_call(project)
    assert call.finish_reason == "tool_calls" and call.time_to_first_token_ms is not None
    assert content_of(call).output == {
        "content": None,
        "tool_calls": [{"id": "call_fake", "name": "get_weather", "arguments": fake_llm.TOOL_ARGUMENTS}],
    }


def test_a_failing_call_is_recorded_as_an_error_and_the_exception_reaches_the_caller(
    openai_client, observatory, project
):
    client = observe_openai(openai_client, observatory)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-broken", messages=QUESTION)
    assert observatory.flush(timeout=30)

    assert_failure_recorded(project, error_type="InternalServerError", model="gpt-broken",
                            message="The server had an error", http_status=500)


def test_per_call_fields_and_a_surrounding_trace(openai_client, observatory, project):
    client = observe_openai(openai_client, observatory, feature="default-feature")
    with observatory.trace("answer-question", user_id="user-1", session_id="session-9") as trace:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=QUESTION, observatory_fields={"prompt_name": "capitals", "prompt_version": 3}
        )
    assert observatory.flush(timeout=30)

    root = Call.objects.get(project=project, span_id=trace.span_id)
    generation = Call.objects.get(project=project, kind="generation")
    assert generation.trace_id == root.trace_id == trace.trace_id
    assert generation.parent_span_id == root.span_id
    assert (generation.user_id, generation.session_id, generation.feature) == ("user-1", "session-9", "default-feature")
    assert (generation.prompt_name, generation.prompt_version) == ("capitals", "3")


def test_with_options_returns_an_observed_client(openai_client, observatory, project):
    client = observe_openai(openai_client, observatory).with_options(timeout=20)
    client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert observatory.flush(timeout=30)
    assert only_call(project).model == "gpt-4o-mini-2024-07-18"


def test_content_is_left_out_when_capture_is_off(openai_client, observatory, project):
    client = observe_openai(openai_client, observatory, capture_content=False)
    client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert observatory.flush(timeout=30)

    call = only_call(project)
    assert call.output_tokens == len(fake_llm.ANSWER_TOKENS)
    assert not CallContent.objects.filter(call_id=call.id).exists()


def test_the_async_client_streams_inside_a_trace(llm_server, observatory, project):
    async_client = openai.AsyncOpenAI(base_url=f"{llm_server.url}/v1", api_key="sk-test", max_retries=0)
    client = observe_openai(async_client, observatory)

    async def ask() -> str:
        with observatory.trace("async-question") as trace:
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True)
            text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
        await async_client.close()
        return text, trace

    text, trace = asyncio.run(ask())
    assert text == fake_llm.ANSWER
    assert observatory.flush(timeout=30)

    generation = Call.objects.get(project=project, kind="generation")
    assert (generation.trace_id, generation.parent_span_id) == (trace.trace_id, trace.span_id)
    assert generation.output_tokens == len(fake_llm.ANSWER_TOKENS)
    assert generation.time_to_first_token_ms is not None
