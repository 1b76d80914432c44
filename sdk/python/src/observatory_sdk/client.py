"""Observatory: the application's handle for recording calls, spans and events."""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from observatory_sdk.buffer import EventBuffer
from observatory_sdk.config import ClientConfig, config_build
from observatory_sdk.events import new_span_id, timestamp_jsonable, to_jsonable
from observatory_sdk.spans import Span, inherited_fields
from observatory_sdk.stats import ClientStats, Counters
from observatory_sdk.transport import Transport
from observatory_sdk.worker import DeliveryWorker

logger = logging.getLogger("observatory_sdk")

F = TypeVar("F", bound=Callable[..., Any])

# Clients with a running delivery thread, for the exit and fork hooks (registered once,
# not per client). Held strongly: a client the application dropped may still have queued
# events, which the exit hook must send.
_clients: set[Observatory] = set()
# A queue overflow is logged when it starts and then once per this many events lost.
_DROP_LOG_EVERY = 1000


class Observatory:
    """Records LLM calls and spans and sends them to Observatory from a background thread.

    Recording never blocks on the network and never raises: events wait in a bounded
    in-memory queue and are sent in gzip'd batches of `batch_size`, or after
    `flush_interval` seconds, whichever comes first. Without a URL and key (arguments or
    OBSERVATORY_URL / OBSERVATORY_SECRET_KEY) the client is disabled and records nothing.
    """

    def __init__(
        self,
        base_url: str | None = None,
        secret_key: str | None = None,
        *,
        environment: str | None = None,
        release: str | None = None,
        capture_content: bool | None = None,
        enabled: bool | None = None,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_queue_size: int = 10_000,
        max_request_bytes: int = 5_000_000,
        request_timeout: float = 10.0,
        max_retries: int | None = 10,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        gzip: bool = True,
        exit_timeout: float = 5.0,
    ) -> None:
        self.config: ClientConfig = config_build(
            base_url=base_url,
            secret_key=secret_key,
            enabled=enabled,
            environment=environment,
            release=release,
            capture_content=capture_content,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_queue_size=max_queue_size,
            max_request_bytes=max_request_bytes,
            request_timeout=request_timeout,
            max_retries=max_retries,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            gzip=gzip,
            exit_timeout=exit_timeout,
        )
        if not self.config.enabled:
            logger.info("Observatory is disabled (no OBSERVATORY_URL / OBSERVATORY_SECRET_KEY): nothing is recorded")
        self._fresh_state()

    def _fresh_state(self) -> None:
        """Everything a process must not share with its parent after a fork."""
        self._lock = threading.Lock()
        self._buffer = EventBuffer(
            capacity=self.config.max_queue_size,
            batch_size=self.config.batch_size,
            flush_interval=self.config.flush_interval,
        )
        self._counters = Counters()
        self._worker: DeliveryWorker | None = None
        self._closed = False
        self._warned_closed = False

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    # Recording

    def record(self, **fields: Any) -> str:
        """Queue one call or span (the fields of the native event API) and return its id.

        `start_time` defaults to now; inside a trace the event joins it. Values that are
        not JSON (datetimes, Decimals, pydantic models, ...) are converted. Retries of the
        event are stored once on the server, because it carries this id.
        """
        span_id = fields.pop("span_id", None)
        event_id = str(fields.pop("id", None) or span_id or new_span_id())
        if not self.config.enabled:
            return event_id
        if self._closed:
            self._warn_closed()
            return event_id
        try:
            payload = self._payload(event_id, fields)
        except Exception:
            logger.exception("Observatory: could not record event %s", event_id)
            return event_id
        self._enqueue(payload)
        return event_id

    def event(self, name: str, **fields: Any) -> str:
        """Record a point in time (kind="event"): a user's feedback, a cache hit, a retry."""
        fields.setdefault("kind", "event")
        return self.record(name=name, **fields)

    def trace(self, name: str, *, kind: str = "span", **fields: Any) -> Span:
        """A new trace, whose root span is recorded when the `with` block ends."""
        return Span(self.record, name=name, kind=kind, root=True, fields=fields)

    def span(self, name: str, *, kind: str = "span", **fields: Any) -> Span:
        """A span inside the current trace (or the root of a new one outside any)."""
        return Span(self.record, name=name, kind=kind, root=False, fields=fields)

    def observe(
        self, name: str | Callable | None = None, *, kind: str = "span", capture_io: bool = False, **fields: Any
    ) -> Any:
        """Decorator: each call of the function is a span (`@observatory.observe` or
        `@observatory.observe("name", kind="tool")`); with capture_io, its arguments and
        return value are the span's input and output."""
        if callable(name):
            return self.observe(kind=kind, capture_io=capture_io, **fields)(name)

        def decorate(function: F) -> F:
            span_name = name or function.__qualname__
            signature = inspect.signature(function) if capture_io else None

            def opened(args: tuple, kwargs: dict) -> Span:
                span = self.span(span_name, kind=kind, **fields)
                if capture_io:
                    span.update(input=_arguments(signature, args, kwargs))
                return span

            if inspect.iscoroutinefunction(function):

                @functools.wraps(function)
                async def observed_async(*args: Any, **kwargs: Any) -> Any:
                    with opened(args, kwargs) as span:
                        result = await function(*args, **kwargs)
                        if capture_io:
                            span.update(output=result)
                        return result

                return observed_async  # type: ignore[return-value]

            @functools.wraps(function)
            def observed(*args: Any, **kwargs: Any) -> Any:
                with opened(args, kwargs) as span:
                    result = function(*args, **kwargs)
                    if capture_io:
                        span.update(output=result)
                    return result

            return observed  # type: ignore[return-value]

        return decorate

    def _payload(self, event_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {"environment": self.config.environment, "release": self.config.release}
        merged.update(inherited_fields(fields))
        merged.update(fields)
        if not self.config.capture_content:
            merged.pop("input", None)
            merged.pop("output", None)
        if merged.get("start_time") is None and merged.get("end_time") is None:
            merged["start_time"] = time.time()
        payload: dict[str, Any] = {"id": event_id}
        for key, value in merged.items():
            if value is None:
                continue
            if key in ("start_time", "end_time"):
                payload[key] = timestamp_jsonable(value)
            else:
                payload[key] = to_jsonable(value)
        return payload

    def _enqueue(self, payload: dict[str, Any]) -> None:
        if self._worker is None:
            self._start_worker()
        if not self._buffer.put(payload):
            dropped = self._buffer.dropped
            if dropped == 1 or dropped % _DROP_LOG_EVERY == 0:
                logger.warning(
                    "Observatory: queue full (%d events, server unreachable?); dropping the oldest (%d so far)",
                    self.config.max_queue_size,
                    dropped,
                )

    def _start_worker(self) -> None:
        with self._lock:
            if self._worker is not None or self._closed:
                return
            assert self.config.base_url is not None and self.config.secret_key is not None
            transport = Transport(
                url=self.config.events_url,
                secret_key=self.config.secret_key,
                timeout=self.config.request_timeout,
                compress=self.config.gzip,
            )
            self._worker = DeliveryWorker(
                buffer=self._buffer, transport=transport, config=self.config, counters=self._counters
            )
            self._worker.start()
            _clients.add(self)

    def _warn_closed(self) -> None:
        if not self._warned_closed:
            self._warned_closed = True
            logger.warning("Observatory: record() after shutdown(); the event is not sent")

    # Delivery

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Send everything recorded so far now and wait (at most `timeout` seconds) until
        the server has answered for it. True when nothing recorded before the call is
        still waiting; see stats() for what was accepted, rejected or dropped."""
        if self._worker is None:
            return True
        return self._buffer.flush(timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush (at most `timeout` seconds, default exit_timeout), then stop the background
        thread. Events still queued after that are counted as failed. Called at exit."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            worker = self._worker
        _clients.discard(self)
        if worker is None:
            return True
        timeout = self.config.exit_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self._buffer.close()
        delivered = self._buffer.flush(timeout)
        left = self._buffer.stop()
        if left:
            self._counters.add(failed=len(left))
            logger.warning("Observatory: %d events were not sent before shutdown", len(left))
        # The thread may be inside a request that outlives the deadline; it is a daemon,
        # so it cannot hold the process up.
        worker.join(max(0.1, deadline - time.monotonic()))
        return delivered

    def stats(self) -> ClientStats:
        queued, in_flight = self._buffer.sizes()
        counters = self._counters
        return ClientStats(
            queued=queued,
            in_flight=in_flight,
            accepted=counters.accepted,
            duplicates=counters.duplicates,
            rejected=counters.rejected,
            dropped=self._buffer.dropped,
            failed=counters.failed,
            retries=counters.retries,
        )

    def __enter__(self) -> Observatory:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = "disabled" if not self.enabled else ("closed" if self._closed else "open")
        return f"<Observatory {self.config.base_url or '-'} {state}>"


def _arguments(signature: inspect.Signature | None, args: tuple, kwargs: dict) -> dict[str, Any]:
    if signature is None:
        return {"args": args, "kwargs": kwargs}
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:
        return {"args": args, "kwargs": kwargs}
    return {name: value for name, value in bound.arguments.items() if name not in ("self", "cls")}


def _shutdown_all() -> None:
    for client in list(_clients):
        try:
            client.shutdown()
        except Exception:
            logger.exception("Observatory: shutdown at exit failed")


def _reset_after_fork() -> None:
    # The child has a copy of the parent's queue but not its thread; the parent sends those
    # events, and the child starts its own thread when it records its first event. Locks
    # are replaced because another thread may have held one at the moment of the fork.
    for client in list(_clients):
        client._fresh_state()


atexit.register(_shutdown_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
