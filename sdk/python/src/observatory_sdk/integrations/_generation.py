"""What the OpenAI and Anthropic helpers share: timing one model call and recording it once.

Observing must never change what the application sees: the provider's answer or
exception passes through untouched, and a failure inside the observing code is logged
and swallowed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from observatory_sdk.events import new_span_id, to_jsonable
from observatory_sdk.spans import error_fields, inherited_fields

if TYPE_CHECKING:
    from observatory_sdk.client import Observatory

logger = logging.getLogger("observatory_sdk")

# Per-call fields for one request: client.chat.completions.create(..., observatory_fields={...}).
PER_CALL_ARGUMENT = "observatory_fields"

# Request parameters worth seeing next to a surprising answer; kept in metadata.request.
REQUEST_PARAMETERS = (
    "temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "n", "seed",
    "reasoning_effort", "service_tier", "stop", "stop_sequences",
)


@dataclass(frozen=True)
class ObserveOptions:
    """How one wrapped client records: set once by observe_openai / observe_anthropic."""

    observatory: Observatory
    provider: str
    name: str | None
    capture_content: bool
    defaults: dict[str, Any] = field(default_factory=dict)
    # The wrapped client's own timeout, for calls that do not pass one.
    timeout_ms: float | None = None


def observe_options(
    observatory: Observatory, provider: str, name: str | None, capture_content: bool | None, defaults: dict[str, Any],
    client: Any = None,
) -> ObserveOptions:
    capture = observatory.config.capture_content if capture_content is None else capture_content
    return ObserveOptions(observatory, provider, name, capture, dict(defaults),
                          timeout_ms=timeout_ms_of(getattr(client, "timeout", None)))


def timeout_ms_of(timeout: Any) -> float | None:
    """A timeout in seconds (a number, or an httpx.Timeout whose read timeout bounds the
    wait for the answer) in milliseconds; None when there is none."""
    seconds = getattr(timeout, "read", timeout)
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds > 0:
        return float(seconds) * 1000
    return None


def request_signals(options: ObserveOptions, kwargs: dict[str, Any], *, streaming: bool) -> dict[str, Any]:
    """The safety nets the request itself shows: its completion limit, timeout and streaming."""
    signals: dict[str, Any] = {"streamed": streaming}
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = kwargs.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            signals["max_tokens"] = value
            break
    timeout = timeout_ms_of(kwargs.get("timeout")) or options.timeout_ms
    if timeout is not None:
        signals["timeout_ms"] = timeout
    return signals


class StreamObserver(Protocol):
    has_output: bool  # a content token has arrived (time to first token)

    def observe(self, item: Any) -> bool:
        """Take note of one streamed item; False hides it from the application."""

    def fields(self) -> dict[str, Any]:
        """What the items seen so far say: model, tokens, finish_reason, output."""


class Generation:
    """One model call, from the request to its last token; recorded exactly once."""

    def __init__(
        self,
        options: ObserveOptions,
        *,
        model: Any,
        content_input: Any,
        parameters: dict[str, Any],
        per_call: dict[str, Any],
        signals: dict[str, Any] | None = None,
    ) -> None:
        self._options = options
        self._started_at = time.time()
        self._started = time.perf_counter()
        self._first_token_ms: float | None = None
        self._done = False
        # The trace is the one around the call site, even if the stream is read elsewhere.
        fields = {**(signals or {}), **options.defaults, **inherited_fields(per_call), **per_call}
        fields.setdefault("provider", options.provider)
        if model is not None:
            fields.setdefault("model", str(model))
        fields.setdefault("name", options.name or f"chat {fields.get('model') or options.provider}")
        if options.capture_content and content_input is not None:
            # Copied now: the application may append to its message list while a stream is read.
            fields.setdefault("input", to_jsonable(content_input))
        if parameters:
            fields["metadata"] = {"request": parameters, **(fields.get("metadata") or {})}
        self._fields = fields

    @property
    def provider(self) -> str:
        return self._options.provider

    def first_token(self) -> None:
        if self._first_token_ms is None:
            self._first_token_ms = self._elapsed_ms()

    def succeed(self, measured: dict[str, Any], *, stream_incomplete: bool = False) -> None:
        extra = {"stream_incomplete": True} if stream_incomplete else {}
        self._record(measured, extra)

    def fail(self, error: BaseException, measured: dict[str, Any] | None = None) -> None:
        failure = {**(measured or {}), **error_fields(error)}
        status_code = getattr(error, "status_code", None)
        if isinstance(status_code, int) and 100 <= status_code <= 599:
            failure["http_status"] = status_code  # 429s and 5xx per provider on the Reliability page
        self._record(failure, {})

    def _record(self, measured: dict[str, Any], extra_metadata: dict[str, Any]) -> None:
        if self._done:
            return
        self._done = True
        try:
            fields = {**self._fields, **{key: value for key, value in measured.items() if value is not None}}
            if not self._options.capture_content:
                fields.pop("output", None)
            if extra_metadata:
                fields["metadata"] = {**extra_metadata, **(fields.get("metadata") or {})}
            self._options.observatory.record(
                id=new_span_id(),
                kind="generation",
                start_time=self._started_at,
                latency_ms=self._elapsed_ms(),
                time_to_first_token_ms=self._first_token_ms,
                **fields,
            )
        except Exception:
            logger.exception("Observatory: could not record a %s call", self._options.provider)

    def _elapsed_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000


def value_of(obj: Any, name: str, default: Any = None) -> Any:
    """An attribute of a response object, or a key of its dict form: duck typing for
    pydantic models, plain dicts and anything in between."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def bounded_tokens(total: int, part: int | None) -> int:
    """A token breakdown never above its total: the server rejects an event whose cached or
    reasoning tokens exceed the total, and a provider's rounding must not lose the call."""
    return max(0, min(part or 0, total))


def request_parameters(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {name: kwargs[name] for name in REQUEST_PARAMETERS if kwargs.get(name) is not None}


def split_per_call(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the provider's arguments, this call's own Observatory fields)."""
    if PER_CALL_ARGUMENT not in kwargs:
        return kwargs, {}
    kwargs = dict(kwargs)
    return kwargs, dict(kwargs.pop(PER_CALL_ARGUMENT) or {})


def listed(kwargs: dict[str, Any], name: str) -> tuple[dict[str, Any], Any]:
    """(kwargs, kwargs[name]) with a one-shot iterable turned into a list first: the
    provider's client would consume a generator before it could be recorded."""
    value = kwargs.get(name)
    if value is None or isinstance(value, (list, tuple, str, dict)):
        return kwargs, value
    try:
        materialized = list(value)
    except TypeError:
        return kwargs, value
    return {**kwargs, name: materialized}, materialized
