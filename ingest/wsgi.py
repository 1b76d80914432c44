"""The ingest endpoints' own WSGI handler: Django's request cycle cut to what an API-key POST needs.

Applications send every LLM call here, often one per request, so each step of a request's
cycle is paid thousands of times a second. On single-event requests, Django's per-request
signals (request_started and request_finished, with their seven receivers), the URL-conf and
script-prefix bookkeeping and the probe middleware cost about a tenth of the web server's CPU
(679 against 604 µs per request in paired runs, bench/README.md). This handler serves POSTs
to the ingest paths and keeps, of all that, what applies to them:

- the middleware in settings.MIDDLEWARE up to ingest.middleware's fast path (the request id
  with its log line and counter, Django's SecurityMiddleware: HTTPS redirect, HSTS, nosniff),
  each wrapped as Django wraps it, so an exception becomes Django's 500 (or 400), logged;
  ProbeMiddleware serves only the probe paths and is left out;
- the request id bound before the middleware and the 4xx/5xx log line after it, as
  observatory.request_id's signal receiver and Django's get_response do;
- connection hygiene: once answered, connections past CONN_MAX_AGE, or left unusable or
  mid-transaction, are closed, as Django's close_old_connections does on request_finished.

What the skipped receivers do does not apply here: reset_queries keeps a log only under DEBUG,
close_caches closes nothing for the cache backends Observatory configures (locmem and Redis
keep their connections), and reset_urlconf undoes a set_urlconf this handler never makes.
tests/ingest/test_wsgi.py fails when a receiver is added, so that the next one is weighed too.
"""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.http import Http404, HttpRequest
from django.utils.log import log_response
from django.utils.module_loading import import_string

from ingest.middleware import IngestFastPathMiddleware, ingest_routes
from observatory.health.middleware import ProbeMiddleware
from observatory.request_id import bind_at_request_start, unbind_at_request_end


def _dotted(middleware: type) -> str:
    return f"{middleware.__module__}.{middleware.__qualname__}"


FAST_PATH = _dotted(IngestFastPathMiddleware)
PROBES = _dotted(ProbeMiddleware)  # serves its own paths and passes every other request on untouched


def ingest_middleware() -> list[str]:
    """The middleware an ingest request passes through in settings.MIDDLEWARE, in order."""
    before_and_fast_path = settings.MIDDLEWARE[: settings.MIDDLEWARE.index(FAST_PATH) + 1]
    return [path for path in before_and_fast_path if path != PROBES]


def _not_an_ingest_path(request: HttpRequest):
    raise Http404  # unreachable: is_ingest_request() sent only the fast path's own paths here


def is_ingest_request(environ: dict) -> bool:
    return environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") in ingest_routes()


class IngestWSGIHandler(WSGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        handler = convert_exception_to_response(_not_an_ingest_path)
        for path in reversed(ingest_middleware()):
            handler = convert_exception_to_response(import_string(path)(handler))
        self._middleware_chain = handler

    def __call__(self, environ: dict, start_response):
        bind_at_request_start(self.__class__, environ=environ)
        try:
            request = self.request_class(environ)
            response = self._middleware_chain(request)
            if response.status_code >= 400:
                log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
            start_response(
                f"{response.status_code} {response.reason_phrase}",
                [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())],
            )
            # The ingest views answer with a plain HttpResponse, never a stream or a file, and
            # nothing is left for the server to close: response.close() would only send
            # request_finished and close the request, done here.
            request.close()
            return [response.content]
        finally:
            close_old_connections()
            unbind_at_request_end(self.__class__)
