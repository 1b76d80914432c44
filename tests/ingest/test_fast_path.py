"""The ingest endpoints answer from ingest.middleware, ahead of the middleware only pages need,
and keep what every response must have: the request id, the security headers, host checks,
and a 503 when the database is down."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import Client

from ingest.middleware import IngestFastPathMiddleware, ingest_routes
from observatory.calls.models import Call
from tests.ingest.conftest import event

pytestmark = pytest.mark.django_db


def test_every_ingest_route_is_served_by_the_fast_path():
    names = {match.url_name for match in ingest_routes().values()}
    assert names == {"events-ingest", "otlp-traces", "langfuse-otel-traces", "langfuse-ingestion", "langfuse-scores"}


def test_an_ingest_response_skips_page_middleware_but_keeps_ids_and_security_headers(ingest, monkeypatch):
    served = []
    original = IngestFastPathMiddleware.__call__

    def spy(self, request):
        response = original(self, request)
        served.append(getattr(request, "session", None))
        return response

    monkeypatch.setattr(IngestFastPathMiddleware, "__call__", spy)
    response = ingest.post(event(id="fast"), headers={"HTTP_X_REQUEST_ID": "req-fast-1"})
    assert response.status_code == 200
    assert served == [None]  # SessionMiddleware never ran
    assert response["X-Request-ID"] == "req-fast-1"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response and "Set-Cookie" not in response
    assert Call.objects.filter(span_id="fast").count() == 1


def test_other_paths_still_pass_through_every_middleware(client):
    response = client.get("/api/v1/calls")
    assert "Content-Security-Policy" in response and "X-Frame-Options" in response


def test_a_host_outside_allowed_hosts_is_refused(api_key):
    response = Client().post("/api/v1/events", event(id="evil-host"), content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {api_key.secret}", HTTP_HOST="attacker.example")
    assert response.status_code == 400
    assert not Call.objects.filter(span_id="evil-host").exists()


def test_other_methods_on_an_ingest_path_answer_405(ingest):
    assert ingest.client.get("/api/v1/events").status_code == 405
    assert ingest.client.get("/v1/traces").status_code == 405


def test_a_database_outage_answers_503_with_retry_after(ingest, monkeypatch):
    def unavailable(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("ingest.native.views.events_ingest", unavailable)
    response = ingest.post(event(id="down"))
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert "nothing was stored" in response.json()["detail"]
