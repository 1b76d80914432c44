"""POSTs to the ingest endpoints take ingest.wsgi's short handler, through the WSGI application
granian serves, and keep what Django's full cycle gives them: the request id, security headers
and redirect, host checks, Django's 500, the error log line and connection hygiene.

Transactional: the handler closes connections that are mid-transaction after each request, as
Django's does, which would close the one a test wrapped in a transaction is using."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.signals import request_finished, request_started
from django.db import connection
from django.test import RequestFactory

from ingest.middleware import ingest_routes
from ingest.wsgi import IngestWSGIHandler, ingest_middleware
from observatory.calls.models import Call
from observatory.request_id import current_request_id
from observatory.wsgi import application
from tests.ingest.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)


class Answer:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_code = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body

    def json(self):
        return json.loads(self.body)


def call(method: str, path: str, body: bytes = b"", *, app=application, **extra: str) -> Answer:
    """The request through observatory.wsgi.application, as granian calls it."""
    environ = RequestFactory().generic(method, path, data=body, content_type="application/json", **extra).environ
    started: list = []

    def start_response(status, headers):
        started.extend([status, headers])

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):  # a server closes what Django's handler returns
            result.close()
    return Answer(*started, body)


@pytest.fixture
def django_cycles():
    """Requests that went through Django's own handler (its request_started signal)."""
    seen = []

    def receiver(sender, **kwargs):
        seen.append(sender)

    request_started.connect(receiver)
    yield seen
    request_started.disconnect(receiver)


def post_event(api_key, span_id: str, **extra) -> Answer:
    return call("POST", "/api/v1/events", json.dumps(event(id=span_id)).encode(),
                HTTP_AUTHORIZATION=f"Bearer {api_key.secret}", **extra)


def test_an_ingest_post_takes_the_short_handler_and_keeps_ids_and_security_headers(api_key, django_cycles):
    answer = post_event(api_key, "short", HTTP_X_REQUEST_ID="req-short-1")
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    assert django_cycles == []
    assert answer.headers["X-Request-ID"] == "req-short-1"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in answer.headers and "Content-Security-Policy" not in answer.headers
    assert Call.objects.filter(span_id="short").count() == 1
    assert current_request_id() is None  # unbound once answered


def test_every_ingest_path_takes_the_short_handler(django_cycles):
    for path in ingest_routes():
        answer = call("POST", path, b"{}")
        assert answer.status_code == 401, path
        assert "X-Request-ID" in answer.headers
    assert django_cycles == []


def test_other_requests_take_djangos_handler(django_cycles):
    assert call("GET", "/api/v1/events").status_code == 405
    assert call("GET", "/healthz").status_code == 200
    assert len(django_cycles) == 2


def test_a_host_outside_allowed_hosts_is_refused(api_key, caplog):
    answer = post_event(api_key, "evil-host", HTTP_HOST="attacker.example")
    assert answer.status_code == 400
    assert any(record.name == "django.security.DisallowedHost" for record in caplog.records)
    assert not Call.objects.filter(span_id="evil-host").exists()


def test_plain_http_is_redirected_when_https_is_required(api_key, settings):
    settings.SECURE_SSL_REDIRECT = True
    # Middleware reads its settings once, when the handler is made (as a worker starts).
    answer = post_event(api_key, "plain-http", app=IngestWSGIHandler())
    assert answer.status_code == 301
    assert answer.headers["Location"] == "https://testserver/api/v1/events"
    assert not Call.objects.filter(span_id="plain-http").exists()


def test_an_unexpected_error_is_djangos_500_logged(api_key, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("ingest.native.views.events_ingest", broken)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        answer = post_event(api_key, "bug", HTTP_X_REQUEST_ID="req-bug-1")
    assert answer.status_code == 500
    assert answer.headers["X-Request-ID"] == "req-bug-1"
    assert b"a bug" not in answer.body
    assert [record.getMessage() for record in caplog.records if record.name == "django.request"] == [
        "Internal Server Error: /api/v1/events"
    ]


def test_a_refusal_is_logged_with_the_request_id(monkeypatch):
    logged = []
    monkeypatch.setattr("ingest.wsgi.log_response",
                        lambda message, *args, **kwargs: logged.append((message % args, current_request_id())))
    answer = call("POST", "/api/v1/events", b"{}", HTTP_AUTHORIZATION="Bearer sk-obs-unknown",
                  HTTP_X_REQUEST_ID="req-401-1")
    assert answer.status_code == 401
    assert logged == [("Unauthorized: /api/v1/events", "req-401-1")]


def test_connections_past_their_age_are_closed_once_answered(api_key, monkeypatch):
    connection.close()
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    assert post_event(api_key, "aged").status_code == 200
    assert connection.connection is None

    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)  # kept for good
    assert post_event(api_key, "kept").status_code == 200
    assert connection.connection is not None


def test_ingest_requests_pass_the_middleware_ahead_of_the_fast_path_but_probes():
    assert ingest_middleware() == [
        "observatory.request_id.RequestIdMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "ingest.middleware.IngestFastPathMiddleware",
    ]


def _receivers(signal) -> set[str]:
    return {reference().__qualname__ for _, reference, _ in signal.receivers if reference() is not None}


def test_every_request_signal_receiver_was_weighed_for_the_short_handler():
    # ingest.wsgi does what these do for an ingest request, or explains why it need not: a new
    # receiver is to be weighed the same way before this list grows.
    assert _receivers(request_started) == {"reset_queries", "close_old_connections", "bind_at_request_start"}
    assert _receivers(request_finished) == {"close_old_connections", "close_caches", "unbind_at_request_end",
                                            "reset_urlconf"}
