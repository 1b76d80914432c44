"""/metrics: who may read it, and what it reports."""

from __future__ import annotations

import ipaddress
import urllib.error
import urllib.request
import uuid
from datetime import timedelta

import pytest
from django.db.models import F
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families

from observatory import telemetry
from observatory.calls.models import ChangedMinute
from observatory.health.checks import queue_depths
from observatory.health.scrape import rollup_backlog
from observatory.health.worker import serve_worker_metrics
from tests.observatory.test_settings import GOOD_KEY, assert_one_sentence, manage
from tests.system.topology import DEFAULT_REDIS_URL, broker_problem, free_port

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def protected(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    return settings


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def test_metrics_are_off_until_a_token_or_network_is_configured(client, settings):
    settings.METRICS_TOKEN = None
    settings.METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics").status_code == 404


def test_metrics_refuse_a_missing_or_wrong_token(client, protected):
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token-0123456789").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 403


def test_metrics_answer_the_token(client, protected):
    found = scrape(client)
    assert found[("observatory_dependency_up", (("dependency", "database"),))] == 1
    assert found[("observatory_dependency_up", (("dependency", "broker"),))] == 1


def test_metrics_answer_an_allowed_network_without_a_token(client, settings):
    settings.METRICS_TOKEN = None
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    assert client.get("/metrics").status_code == 200
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    assert client.get("/metrics").status_code == 403


def test_counters_recorded_by_any_module_are_exported(client, protected):
    key = ("observatory_alert_sends_total", (("channel", "email"),))
    before = scrape(client).get(key, 0)
    telemetry.ALERT_SENDS.labels(channel="email").inc()
    assert scrape(client)[key] == before + 1


def test_requests_are_counted_by_url_name_never_by_path(client, protected):
    def count(view: str, status: str) -> float:
        return scrape(client).get(
            ("observatory_http_requests_total", (("method", "GET"), ("status", status), ("view", view))), 0
        )

    healthz, unmatched = count("healthz", "200"), count("unmatched", "404")
    client.get("/healthz")
    client.get(f"/no-such-page-{uuid.uuid4().hex}/")
    assert count("healthz", "200") == healthz + 1
    assert count("unmatched", "404") == unmatched + 1


def test_rollup_lag_is_the_age_of_the_oldest_minute_waiting(project):
    assert rollup_backlog() == (0, 0.0)
    ChangedMinute.objects.create(project=project, minute="2026-01-01T10:00Z")
    ChangedMinute.objects.create(project=project, minute="2026-01-01T10:01Z")
    # marked_at is set on save; age one of them as if rollups had stalled for 10 minutes.
    ChangedMinute.objects.filter(minute="2026-01-01T10:00Z").update(marked_at=F("marked_at") - timedelta(minutes=10))
    pending, lag = rollup_backlog()
    assert pending == 2
    assert lag >= 600


def test_rollup_lag_is_scraped(client, protected, project):
    ChangedMinute.objects.create(project=project, minute="2026-01-01T10:00Z")
    found = scrape(client)
    assert found[("observatory_rollup_pending_minutes", ())] == 1
    assert found[("observatory_rollup_lag_seconds", ())] >= 0


def test_queue_depth_counts_messages_waiting_in_the_file_broker(tmp_path):
    folders = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path), "control_folder": str(tmp_path)}
    with Connection("filesystem://", transport_options=folders) as connection:
        queue = connection.SimpleQueue("depth-test")
        queue.put({"n": 1})
        queue.put({"n": 2})
        assert queue_depths(connection=connection, queues=["depth-test", "never-used"]) == {
            "depth-test": 2,
            "never-used": 0,
        }
        queue.close()


@pytest.mark.parametrize("url", [DEFAULT_REDIS_URL, "amqp://guest:guest@127.0.0.1:5672//"])
def test_queue_depth_counts_messages_waiting_in_a_broker_server(url):
    problem = broker_problem(url)
    if problem:
        pytest.skip(f"no broker at {url} ({problem})")
    name = f"depth-test-{uuid.uuid4().hex}"
    # Publisher confirms: RabbitMQ has queued each message before put() returns.
    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        queue = connection.SimpleQueue(name)
        try:
            for n in range(3):
                queue.put({"n": n})
            assert queue_depths(connection=connection, queues=[name, f"{name}-never-used"]) == {
                name: 3,
                f"{name}-never-used": 0,
            }
        finally:
            queue.clear()
            queue.close()
            connection.default_channel.queue_delete(name)


def test_queue_depth_is_left_out_when_the_broker_is_unreachable(client, protected, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    found = scrape(client)
    assert found[("observatory_dependency_up", (("dependency", "broker"),))] == 0
    assert not [name for name, _ in found if name == "observatory_celery_queue_depth"]


def test_worker_metrics_endpoint_has_the_same_access_rules(protected):
    server = serve_worker_metrics(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def status(path: str, token: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers), timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    try:
        telemetry.CELERY_TASKS.labels(task="example", outcome="success").inc()
        assert status("/metrics") == 403
        assert status("/elsewhere", TOKEN) == 404
        assert status("/metrics", TOKEN) == 200
        with urllib.request.urlopen(
            urllib.request.Request(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}), timeout=10
        ) as response:
            found = samples(response.read().decode())
        assert found[("observatory_celery_tasks_total", (("outcome", "success"), ("task", "example")))] >= 1
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("METRICS_TOKEN", "short", "METRICS_TOKEN is 5 characters long; use at least 16."),
        ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8, intranet", "METRICS_ALLOWED_NETWORKS contains 'intranet'"),
        ("WORKER_METRICS_BIND", "9808", "WORKER_METRICS_BIND='9808' is not host:port"),
        ("HEALTH_CHECK_TIMEOUT", "0", "HEALTH_CHECK_TIMEOUT=0 is too small"),
    ],
)
def test_bad_monitoring_settings_stop_startup_with_one_sentence(variable, value, message):
    assert_one_sentence(manage("check", SECRET_KEY=GOOD_KEY, **{variable: value}), message)
