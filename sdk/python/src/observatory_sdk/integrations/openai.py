"""Recording OpenAI chat completions made through an existing OpenAI / AsyncOpenAI client.

Also fits OpenAI-compatible servers reached through the openai package (Azure OpenAI,
vLLM, OpenRouter, ...): pass provider= to label them.
"""

from __future__ import annotations

import functools
from typing import Any

from observatory_sdk.integrations._calls import ObservedCall, call_begin, observed_method
from observatory_sdk.integrations._generation import (
    ObserveOptions,
    bounded_tokens,
    listed,
    observe_options,
    split_per_call,
    value_of,
)
from observatory_sdk.integrations._proxy import InterceptingProxy, Routes, rewrapping


def observe_openai(
    client: Any,
    observatory: Any,
    *,
    provider: str = "openai",
    name: str | None = None,
    capture_content: bool | None = None,
    stream_usage: bool = True,
    **fields: Any,
) -> Any:
    """`client` (OpenAI or AsyncOpenAI) with every chat.completions.create recorded.

    `fields` are defaults for every call (feature=, user_id=, tags=, ...); a trace around
    the call and `observatory_fields={...}` on one call override them. With stream_usage,
    streamed calls ask for token usage (stream_options.include_usage) unless the caller
    set it, and the extra usage chunk is kept from the application.
    """
    options = observe_options(observatory, provider, name, capture_content, fields, client)
    begin = functools.partial(_begin, options, stream_usage)
    routes: Routes = {"chat": {"completions": {"create": lambda create: observed_method(create, begin)}}}
    routes["with_options"] = routes["copy"] = rewrapping(routes)
    return InterceptingProxy(client, routes)


def _begin(options: ObserveOptions, stream_usage: bool, kwargs: dict[str, Any]) -> ObservedCall:
    kwargs, per_call = split_per_call(kwargs)
    streaming = bool(kwargs.get("stream"))
    kwargs, messages = listed(kwargs, "messages")
    hide_usage_chunk = False
    if streaming and stream_usage and _usage_not_requested(kwargs.get("stream_options")):
        kwargs = {**kwargs, "stream_options": {**(kwargs.get("stream_options") or {}), "include_usage": True}}
        hide_usage_chunk = True
    return call_begin(
        options,
        kwargs,
        per_call,
        content_input=messages,
        streaming=streaming,
        response_fields=completion_fields,
        new_stream_observer=lambda: ChatStreamObserver(hide_usage_chunk=hide_usage_chunk),
    )


def _usage_not_requested(stream_options: Any) -> bool:
    # Absent, None, or the client's "not given" sentinels (which are falsy).
    if not stream_options:
        return True
    return isinstance(stream_options, dict) and "include_usage" not in stream_options


def usage_fields(usage: Any) -> dict[str, Any]:
    """OpenAI usage in Observatory's terms: prompt tokens include cached ones and
    completion tokens include reasoning ones, as the server counts them."""
    if usage is None:
        return {}
    input_tokens = value_of(usage, "prompt_tokens") or 0
    output_tokens = value_of(usage, "completion_tokens") or 0
    prompt_details = value_of(usage, "prompt_tokens_details")
    completion_details = value_of(usage, "completion_tokens_details")
    cached = bounded_tokens(input_tokens, value_of(prompt_details, "cached_tokens"))
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_input_tokens": cached,
        "cache_write_tokens": bounded_tokens(input_tokens - cached, value_of(prompt_details, "cache_write_tokens")),
        "reasoning_tokens": bounded_tokens(output_tokens, value_of(completion_details, "reasoning_tokens")),
    }


def completion_fields(completion: Any) -> dict[str, Any]:
    choices = value_of(completion, "choices") or []
    fields = {"model": value_of(completion, "model"), **usage_fields(value_of(completion, "usage"))}
    if choices:
        fields["finish_reason"] = value_of(choices[0], "finish_reason")
        fields["output"] = _output([value_of(choice, "message") for choice in choices])
    return fields


def _output(messages: list[Any]) -> Any:
    """The answer as text when it is only text; the whole message when it calls tools or
    refuses; a list when n > 1."""
    shown = [_message_output(message) for message in messages]
    return shown[0] if len(shown) == 1 else shown


def _message_output(message: Any) -> Any:
    if value_of(message, "tool_calls") or value_of(message, "refusal") or value_of(message, "function_call"):
        return message
    return value_of(message, "content")


class ChatStreamObserver:
    """Reads chat.completion.chunk items: model, deltas, finish_reason, and the final usage."""

    def __init__(self, *, hide_usage_chunk: bool) -> None:
        self.has_output = False
        self._hide_usage_chunk = hide_usage_chunk
        self._model: str | None = None
        self._usage: Any = None
        self._finish_reason: str | None = None
        self._text: dict[int, list[str]] = {}
        self._tool_calls: dict[int, dict[int, dict[str, Any]]] = {}

    def observe(self, chunk: Any) -> bool:
        self._model = value_of(chunk, "model") or self._model
        usage = value_of(chunk, "usage")
        if usage is not None:
            self._usage = usage
        choices = value_of(chunk, "choices") or []
        for choice in choices:
            self._observe_choice(choice)
        # The usage chunk asked for on the caller's behalf has no choices; code written
        # for the stream it requested may index choices[0], so it never sees this one.
        return not (self._hide_usage_chunk and not choices and usage is not None)

    def _observe_choice(self, choice: Any) -> None:
        index = value_of(choice, "index") or 0
        delta = value_of(choice, "delta")
        text = value_of(delta, "content") or value_of(delta, "refusal")
        if text:
            self.has_output = True
            self._text.setdefault(index, []).append(text)
        for call in value_of(delta, "tool_calls") or []:
            self.has_output = True
            slot = self._tool_calls.setdefault(index, {}).setdefault(value_of(call, "index") or 0, {"arguments": ""})
            function = value_of(call, "function")
            if value_of(call, "id"):
                slot["id"] = value_of(call, "id")
            if value_of(function, "name"):
                slot["name"] = value_of(function, "name")
            slot["arguments"] += value_of(function, "arguments") or ""
        finish_reason = value_of(choice, "finish_reason")
        if finish_reason and index == 0:
            self._finish_reason = finish_reason

    def fields(self) -> dict[str, Any]:
        indexes = sorted(set(self._text) | set(self._tool_calls))
        outputs = []
        for index in indexes:
            text = "".join(self._text.get(index, []))
            calls = self._tool_calls.get(index)
            outputs.append({"content": text or None, "tool_calls": list(calls.values())} if calls else text)
        return {
            "model": self._model,
            "finish_reason": self._finish_reason,
            "output": (outputs[0] if len(outputs) == 1 else outputs) if outputs else None,
            **usage_fields(self._usage),
        }
