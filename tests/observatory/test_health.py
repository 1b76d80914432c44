"""/healthz and /readyz as a load balancer sees them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from tests.system.topology import free_port

pytestmark = pytest.mark.django_db


def test_healthz_says_the_process_is_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"


def test_readyz_is_200_when_database_broker_and_migrations_are_fine(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "failed": [],
        "checks": {"database": "ok", "broker": "ok", "migrations": "ok"},
    }
    assert response["Cache-Control"] == "no-store"


def test_readyz_is_503_naming_an_unreachable_broker(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]
    assert response.json()["checks"] == {"database": "ok", "broker": "unreachable", "migrations": "ok"}


def test_readyz_is_503_naming_unapplied_migrations(client):
    MigrationRecorder(connection).record_unapplied("calls", "0003_changed_minute")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["migrations"]
    assert response.json()["checks"]["migrations"] == "1 unapplied"


def test_readyz_does_not_say_why_a_dependency_failed(client, settings):
    """The probe may be reachable from outside; host names and errors go to the log only."""
    port = free_port()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    assert str(port) not in client.get("/readyz").content.decode()


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_any_host_over_plain_http(client, settings, path):
    settings.ALLOWED_HOSTS = ["observatory.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(path, HTTP_HOST="10.0.3.7:8000").status_code == 200


def test_other_pages_still_validate_the_host_and_redirect_to_https(client, settings):
    settings.ALLOWED_HOSTS = ["observatory.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/admin/login/", HTTP_HOST="10.0.3.7:8000").status_code == 400
    redirect = client.get("/admin/login/", HTTP_HOST="observatory.example.com")
    assert redirect.status_code == 301
    assert redirect["Location"] == "https://observatory.example.com/admin/login/"


def test_probes_refuse_other_methods(client):
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405
