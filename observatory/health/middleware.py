"""Middleware that keeps the service answerable: probes ahead of host checks, and a database
outage as a 503 with Retry-After instead of a 500.

Probes: a load balancer's probe, Docker's healthcheck and Prometheus reach a container by its
address (Host: 10.0.3.7:8000) over plain HTTP inside the network. Through the normal stack
they would get 400 (not in ALLOWED_HOSTS) or a 301 to https, and the instance would be marked
down. These views build no absolute URLs and set no cookies, so skipping both is safe.

Database outage: ingest clients retry on 503 (OTLP exporters and our SDK do), and because a
call is stored exactly once, the retry after recovery stores what the failed attempt did not.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import resolve, reverse

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5

# URL names (see observatory/urls.py) served by this middleware.
PROBE_URL_NAMES = ("healthz", "readyz", "metrics")


@functools.cache
def probe_paths() -> frozenset[str]:
    return frozenset(reverse(name) for name in PROBE_URL_NAMES)


class ProbeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in probe_paths():
            return self.get_response(request)
        request.resolver_match = match = resolve(request.path_info)
        return match.func(request, *match.args, **match.kwargs)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        return database_unavailable(request, exception)


DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def database_unavailable(request: HttpRequest, exception: Exception) -> JsonResponse:
    logger.warning("database unavailable for %s %s: %s", request.method, request.path, type(exception).__name__)
    response = JsonResponse({"detail": "The database is unavailable; nothing was stored. Retry later."}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
