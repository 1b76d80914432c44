"""Recording Anthropic messages made through an existing Anthropic / AsyncAnthropic client:
messages.create (streamed or not) and the messages.stream() helper."""

from __future__ import annotations

import functools
from typing import Any

from observatory_sdk.integrations._calls import ObservedCall, call_begin, observed_method, observed_stream_method
from observatory_sdk.integrations._generation import (
    ObserveOptions,
    bounded_tokens,
    listed,
    observe_options,
    split_per_call,
    value_of,
)
from observatory_sdk.integrations._proxy import InterceptingProxy, Routes, rewrapping

_USAGE_KEYS = (
    "input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens", "output_tokens_details",
)


def observe_anthropic(
    client: Any,
    observatory: Any,
    *,
    provider: str = "anthropic",
    name: str | None = None,
    capture_content: bool | None = None,
    **fields: Any,
) -> Any:
    """`client` (Anthropic or AsyncAnthropic) with messages.create and messages.stream recorded.

    `fields` are defaults for every call (feature=, user_id=, tags=, ...); a trace around
    the call and `observatory_fields={...}` on one call override them.
    """
    options = observe_options(observatory, provider, name, capture_content, fields, client)
    routes: Routes = {
        "messages": {
            "create": lambda create: observed_method(create, functools.partial(_begin, options, False)),
            "stream": lambda stream: observed_stream_method(stream, functools.partial(_begin, options, True)),
        }
    }
    routes["with_options"] = routes["copy"] = rewrapping(routes)
    return InterceptingProxy(client, routes)


def _begin(options: ObserveOptions, always_streams: bool, kwargs: dict[str, Any]) -> ObservedCall:
    kwargs, per_call = split_per_call(kwargs)
    kwargs, messages = listed(kwargs, "messages")
    system = kwargs.get("system")
    content_input = [{"role": "system", "content": system}, *(messages or [])] if system else messages
    return call_begin(
        options,
        kwargs,
        per_call,
        content_input=content_input,
        streaming=always_streams or bool(kwargs.get("stream")),
        response_fields=message_fields,
        new_stream_observer=MessageStreamObserver,
    )


def usage_fields(usage: Any) -> dict[str, Any]:
    """Anthropic's input_tokens leaves out cache reads and writes; Observatory's
    input_tokens counts every prompt token, with the cached ones broken out."""
    if usage is None:
        return {}
    uncached = value_of(usage, "input_tokens") or 0
    cache_read = value_of(usage, "cache_read_input_tokens") or 0
    cache_write = value_of(usage, "cache_creation_input_tokens") or 0
    output_tokens = value_of(usage, "output_tokens") or 0
    thinking = value_of(value_of(usage, "output_tokens_details"), "thinking_tokens")
    return {
        "input_tokens": uncached + cache_read + cache_write,
        "cached_input_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "output_tokens": output_tokens,
        "reasoning_tokens": bounded_tokens(output_tokens, thinking),
    }


def message_fields(message: Any) -> dict[str, Any]:
    return {
        "model": value_of(message, "model"),
        "finish_reason": value_of(message, "stop_reason"),
        "output": _output(value_of(message, "content") or []),
        **usage_fields(value_of(message, "usage")),
    }


def _output(blocks: list[Any]) -> Any:
    """Text when the answer is only text; the content blocks when it uses tools or thinks."""
    if all(value_of(block, "type") == "text" for block in blocks):
        return "".join(value_of(block, "text") or "" for block in blocks)
    return blocks


class MessageStreamObserver:
    """Reads the raw message stream events: message_start (model, prompt usage),
    content_block_* (the answer), message_delta (stop_reason, final usage)."""

    def __init__(self) -> None:
        self.has_output = False
        self._model: str | None = None
        self._stop_reason: str | None = None
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, dict[str, Any]] = {}

    def observe(self, event: Any) -> bool:
        kind = value_of(event, "type")
        if kind == "message_start":
            message = value_of(event, "message")
            self._model = value_of(message, "model") or self._model
            self._merge_usage(value_of(message, "usage"))
        elif kind == "content_block_start":
            block = value_of(event, "content_block")
            self._blocks[value_of(event, "index") or 0] = {
                "type": value_of(block, "type"), "name": value_of(block, "name"), "text": value_of(block, "text") or "",
            }
        elif kind == "content_block_delta":
            self.has_output = True
            self._add_delta(value_of(event, "index") or 0, value_of(event, "delta"))
        elif kind == "message_delta":
            self._stop_reason = value_of(value_of(event, "delta"), "stop_reason") or self._stop_reason
            self._merge_usage(value_of(event, "usage"))
        return True

    def _add_delta(self, index: int, delta: Any) -> None:
        block = self._blocks.setdefault(index, {"type": "text", "name": None, "text": ""})
        # A tool's input arrives as pieces of JSON text, kept as text: a stream cut short
        # leaves it unparseable, and it is shown as it came.
        for piece_key, block_key in (("text", "text"), ("thinking", "thinking"), ("partial_json", "input")):
            piece = value_of(delta, piece_key)
            if piece:
                block[block_key] = block.get(block_key, "") + piece

    def _merge_usage(self, usage: Any) -> None:
        # message_delta repeats the usage with the final output count (and, on newer API
        # versions, the prompt counts); later non-null values win.
        for key in _USAGE_KEYS:
            value = value_of(usage, key)
            if value is not None:
                self._usage[key] = value

    def fields(self) -> dict[str, Any]:
        blocks = [self._blocks[index] for index in sorted(self._blocks)]
        if all(block["type"] == "text" for block in blocks):
            output: Any = "".join(block["text"] for block in blocks) if blocks else None
        else:
            output = [{key: value for key, value in block.items() if value} for block in blocks]
        return {
            "model": self._model,
            "finish_reason": self._stop_reason,
            "output": output,
            **usage_fields(self._usage or None),
        }
