"""Intercepting one provider method: the request goes on unchanged, its answer is recorded."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from observatory_sdk.integrations._generation import (
    Generation,
    ObserveOptions,
    StreamObserver,
    request_parameters,
    request_signals,
    split_per_call,
)
from observatory_sdk.integrations._streams import observed_stream, observed_stream_manager

logger = logging.getLogger("observatory_sdk")


@dataclass
class ObservedCall:
    """One intercepted request: the arguments to send on and how to read its answer."""

    generation: Generation
    kwargs: dict[str, Any]
    streaming: bool
    response_fields: Callable[[Any], dict[str, Any]]
    new_stream_observer: Callable[[], StreamObserver]

    def complete(self, response: Any) -> Any:
        """The response for the application: a stream is wrapped, anything else recorded."""
        try:
            if self.streaming:
                return observed_stream(response, self.generation, self.new_stream_observer())
            self.generation.succeed(self.response_fields(response))
        except Exception:
            logger.exception("Observatory: could not read a %s response", self.generation.provider)
        return response


def call_begin(
    options: ObserveOptions,
    kwargs: dict[str, Any],
    per_call: dict[str, Any],
    *,
    content_input: Any,
    streaming: bool,
    response_fields: Callable[[Any], dict[str, Any]],
    new_stream_observer: Callable[[], StreamObserver],
) -> ObservedCall:
    """Start timing a request about to be sent with `kwargs`."""
    generation = Generation(
        options,
        model=kwargs.get("model"),
        content_input=content_input,
        parameters=request_parameters(kwargs),
        per_call=per_call,
        signals=request_signals(options, kwargs, streaming=streaming),
    )
    return ObservedCall(generation, kwargs, streaming, response_fields, new_stream_observer)


Begin = Callable[[dict[str, Any]], ObservedCall]


def _invoke(
    method: Callable[..., Any], begin: Begin, args: tuple, kwargs: dict[str, Any]
) -> tuple[ObservedCall | None, Any]:
    """(the call being observed, or None if observing it failed; what `method` returned)."""
    try:
        call = begin(kwargs)
    except Exception:
        logger.exception("Observatory: could not observe a call; it runs unobserved")
        return None, method(*args, **split_per_call(kwargs)[0])
    try:
        return call, method(*args, **call.kwargs)
    except BaseException as error:
        call.generation.fail(error)
        raise


def observed_method(method: Callable[..., Any], begin: Begin) -> Callable[..., Any]:
    """`method`, recording each call through the ObservedCall `begin` makes.

    Async clients' methods are not coroutine functions (the clients wrap them in plain
    decorators) but return awaitables: those are recognised by what they return.
    """

    @functools.wraps(method)
    def observed(*args: Any, **kwargs: Any) -> Any:
        call, response = _invoke(method, begin, args, kwargs)
        if call is None:
            return response
        if inspect.isawaitable(response):
            return _completed_when_awaited(response, call)
        return call.complete(response)

    return observed


async def _completed_when_awaited(response: Awaitable[Any], call: ObservedCall) -> Any:
    try:
        result = await response
    except BaseException as error:
        call.generation.fail(error)
        raise
    return call.complete(result)


def observed_stream_method(method: Callable[..., Any], begin: Begin) -> Callable[..., Any]:
    """A method returning a stream context manager (Anthropic's messages.stream), observed
    from the moment the manager opens the request."""

    @functools.wraps(method)
    def observed(*args: Any, **kwargs: Any) -> Any:
        call, manager = _invoke(method, begin, args, kwargs)
        return manager if call is None else observed_stream_manager(manager, call)

    return observed
