"""The ingest endpoints skip the middleware that only browser pages need.

Applications send every LLM call here, often one per request, so what a request costs before
the view is paid thousands of times a second. Sessions, CSRF, the logged-in user, messages,
static files, frame and content-security headers and login lockouts mean nothing to a request
that authenticates with an API key and answers JSON: measured on single-event requests, they
were about a third of the CPU a request cost. This middleware sits after the request id and
the security middleware (HTTPS redirect, HSTS and nosniff headers still apply) and calls the
ingest view directly; every other path goes through the whole stack. Under the web server,
POSTs to these paths skip Django's request cycle as well (ingest/wsgi.py) and meet only this
middleware and what precedes it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, resolve, reverse

from observatory.health.middleware import DATABASE_UNAVAILABLE, database_unavailable

# URL names (see ingest/urls.py) of the views that receive calls with an API key.
INGEST_URL_NAMES = ("events-ingest", "otlp-traces", "langfuse-otel-traces", "langfuse-ingestion", "langfuse-scores")


@functools.cache
def ingest_routes() -> dict[str, ResolverMatch]:
    """Path → its resolved route, resolved once: the match is only read (view, name)."""
    return {path: resolve(path) for path in (reverse(name) for name in INGEST_URL_NAMES)}


class IngestFastPathMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        match = ingest_routes().get(request.path_info)
        if match is None:
            return self.get_response(request)
        request.get_host()  # ALLOWED_HOSTS still holds (CommonMiddleware would have checked it)
        request.resolver_match = match
        try:
            return match.func(request, *match.args, **match.kwargs)
        except DATABASE_UNAVAILABLE as exception:
            return database_unavailable(request, exception)
