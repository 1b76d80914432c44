"""Traces and spans: which calls belong together, carried by contextvars.

A `with observatory.trace(...)` block makes every call recorded inside it (in the same
thread, or the same asyncio task and the tasks it starts) a child of its span, and hands
them the trace's user, session, feature and tags. A span is recorded once, when its block
ends, with its duration and, if the block raised, the error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from observatory_sdk.events import new_span_id, new_trace_id

# Fields a child inherits from the spans around it unless it sets its own.
INHERITED_FIELDS = ("user_id", "session_id", "feature", "environment", "release", "tags")


@dataclass(frozen=True)
class SpanContext:
    trace_id: str
    span_id: str
    inherited: dict[str, Any]


_current: ContextVar[SpanContext | None] = ContextVar("observatory_current_span", default=None)


def current_span_context() -> SpanContext | None:
    return _current.get()


def inherited_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """What a new call or span gets from the span around it, with its own fields winning:
    trace_id, parent_span_id and the inherited attributes. Empty outside any span."""
    context = _current.get()
    if context is None or "trace_id" in fields:
        return {}
    return {"trace_id": context.trace_id, "parent_span_id": context.span_id, **context.inherited}


def error_fields(error: BaseException) -> dict[str, Any]:
    return {"status": "error", "error_type": type(error).__name__, "error_message": str(error) or repr(error)}


class Span:
    """A unit of work in a trace: use as a context manager; `update()` adds fields before it ends."""

    def __init__(self, record: Callable[..., str], *, name: str, kind: str, root: bool, fields: dict[str, Any]) -> None:
        self._record = record
        self._fields = dict(fields)
        self.name = name
        self.kind = kind
        self.span_id: str = str(self._fields.pop("id", None) or new_span_id())
        parent = None if root else _current.get()
        if "trace_id" in self._fields:
            self.trace_id: str = str(self._fields.pop("trace_id"))
            self.parent_span_id: str | None = self._fields.pop("parent_span_id", None)
        elif parent is not None:
            self.trace_id = parent.trace_id
            self.parent_span_id = self._fields.pop("parent_span_id", parent.span_id)
            for key, value in parent.inherited.items():
                self._fields.setdefault(key, value)
        else:
            self.trace_id = new_trace_id()
            self.parent_span_id = self._fields.pop("parent_span_id", None)
        self._token: Token | None = None
        self._started_at = time.time()
        self._started = time.perf_counter()
        self._ended = False

    def update(self, **fields: Any) -> None:
        """Set or replace fields of this span (output, metadata, model, tokens, ...)."""
        self._fields.update(fields)

    def __enter__(self) -> Span:
        inherited = {key: self._fields[key] for key in INHERITED_FIELDS if self._fields.get(key) is not None}
        self._token = _current.set(SpanContext(self.trace_id, self.span_id, inherited))
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        self.end(error=exc)

    def end(self, *, error: BaseException | None = None) -> None:
        """Record the span (only the first call counts)."""
        if self._ended:
            return
        self._ended = True
        fields = dict(self._fields)
        if error is not None:
            fields.update(error_fields(error))
        self._record(
            id=self.span_id,
            trace_id=self.trace_id,
            parent_span_id=self.parent_span_id,
            name=self.name,
            kind=self.kind,
            start_time=self._started_at,
            latency_ms=(time.perf_counter() - self._started) * 1000,
            **fields,
        )

    def __repr__(self) -> str:
        return f"<Span {self.name!r} trace={self.trace_id} span={self.span_id}>"
