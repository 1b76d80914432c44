"""A request id on every request and on the Celery tasks a request enqueues.

The id is the incoming X-Request-ID when a proxy or client sent a well-formed one (so one id
follows a call through every hop), otherwise a new one. It is returned in the response, added
to every log record made while the request or task runs (see observatory.logs), and carried to
Celery in a message header so a task's logs can be joined to the request that caused it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from django.core.signals import request_finished, request_started
from django.http import HttpRequest, HttpResponse

from observatory.health.middleware import probe_paths
from observatory.telemetry import HTTP_REQUESTS

HEADER = "X-Request-ID"
TASK_HEADER = "request_id"
# Anything else (too long, spaces, control characters) would let a client forge log lines.
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_current: ContextVar[str | None] = ContextVar("request_id", default=None)
logger = logging.getLogger("observatory.requests")


def current_request_id() -> str | None:
    return _current.get()


def well_formed(value: str | None) -> bool:
    return bool(value) and _WELL_FORMED.fullmatch(value) is not None


@contextlib.contextmanager
def request_id_bound(request_id: str | None) -> Iterator[None]:
    """Log records and tasks enqueued inside the block carry `request_id`."""
    token = _current.set(request_id)
    try:
        yield
    finally:
        _current.reset(token)


def _accept(incoming: str | None) -> str:
    return incoming if well_formed(incoming) else uuid.uuid4().hex


def bind_at_request_start(sender: object, environ: dict | None = None, **kwargs: object) -> None:
    """Bind the id as the request starts, before any middleware: Django logs a 4xx response
    ("Not Found: /x") after the middleware has returned, and that line needs the id too."""
    _current.set(_accept(environ.get("HTTP_X_REQUEST_ID")) if environ is not None else None)


def unbind_at_request_end(sender: object, **kwargs: object) -> None:
    _current.set(None)


request_started.connect(bind_at_request_start, dispatch_uid="observatory.request_id.bind")
request_finished.connect(unbind_at_request_end, dispatch_uid="observatory.request_id.unbind")


class RequestIdMiddleware:
    """Outermost middleware: returns the id in the response, and logs and counts each request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = _current.get() or _accept(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        started = time.perf_counter()
        with request_id_bound(request_id):
            response = self.get_response(request)
            response[HEADER] = request_id
            # Method, path and status only: never headers (Authorization), query strings or bodies.
            logger.log(
                # Probes arrive every few seconds; at INFO they would drown everything else.
                logging.DEBUG if request.path_info in probe_paths() else logging.INFO,
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
        match = getattr(request, "resolver_match", None)
        HTTP_REQUESTS.labels(
            # Labels from fixed sets only: a path or an arbitrary method would grow series without bound.
            view=match.view_name if match else "unmatched",
            method=request.method if request.method in _METHODS else "other",
            status=str(response.status_code),
        ).inc()
        return response


# --- Celery: carry the id from the request that enqueued a task into the task's logs ------


def task_publish_add_request_id(headers: dict | None = None, **kwargs: object) -> None:
    request_id = _current.get()
    if request_id and headers is not None:
        headers.setdefault(TASK_HEADER, request_id)


def task_prerun_set_request_id(task: object = None, **kwargs: object) -> None:
    incoming = getattr(getattr(task, "request", None), TASK_HEADER, None)
    _current.set(incoming if well_formed(incoming) else None)


def task_postrun_clear_request_id(**kwargs: object) -> None:
    _current.set(None)
