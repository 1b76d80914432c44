"""The production topology as separate processes over real connections (see topology.py):
granian with several workers, a Celery worker and beat on Redis, PostgreSQL, an SMTP sink.

It checks what exists now: probes and healthchecks, metrics behind their token, a job's round
trip through the broker with its request id, a worker killed in the middle of a job, dropped
database connections, mail delivery, and a budget email sent through beat and the worker.
EXTENSION marks where ingest (issue 3) and rollups (issue 5) join the same run.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

import psutil
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from observatory.calls.partitions import partitions_existing
from tests.system.topology import Topology, free_port, wait_until

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

PARTITIONS_MAINTAIN = "observatory.calls.tasks.partitions_maintain"
JOB_TIMEOUT = 90  # an upper bound for a job to be picked up and finish, not a speed claim


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def last_partition_dropped() -> date:
    """Drop the newest daily partition (empty, days ahead) so that partitions_maintain has
    visible work to do; returns its day."""
    from django.db import connection

    day = max(partitions_existing(table="calls_call"))
    with connection.cursor() as cursor:
        for table in ("calls_call", "calls_callcontent"):
            cursor.execute(f"DROP TABLE {table}_p{day:%Y%m%d}")
    return day


def partition_exists(day: date) -> bool:
    return day in partitions_existing(table="calls_call")


def task_succeeded(topology: Topology, task_id: str) -> dict | None:
    return next(
        (
            line
            for line in topology.processes["worker"].json_lines()
            if line.get("task_id") == task_id and "succeeded" in line.get("message", "")
        ),
        None,
    )


def app_backends(topology: Topology, condition: str = "true") -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND {condition}",
            [topology.application_name],
        )
        return cursor.fetchone()[0]


@contextlib.contextmanager
def call_store_locked() -> Iterator[None]:
    """Hold an exclusive lock on the call store in a connection of its own, so that a job
    touching it waits, visibly, until the block ends."""
    from django.db import connection

    with psycopg.connect(**connection.get_connection_params()) as locker:
        locker.execute("LOCK TABLE calls_call IN ACCESS EXCLUSIVE MODE")
        yield
        locker.rollback()


def test_probes_answer_whatever_the_host_and_every_healthcheck_passes(topology):
    # Probes reach a container by its address, which is not in ALLOWED_HOSTS.
    alive = topology.request("GET", "/healthz", headers={"Host": "10.1.2.3:8000"})
    assert alive.status == 200

    ready = topology.request("GET", "/readyz", headers={"Host": "10.1.2.3:8000"})
    assert ready.status == 200
    assert ready.json() == {
        "status": "ok",
        "failed": [],
        "checks": {"database": "ok", "broker": "ok", "migrations": "ok"},
    }
    for role in ("web", "worker", "beat"):
        check = topology.healthcheck(role)
        assert check.returncode == 0, f"{role}: {check.stderr}"


def test_readyz_is_503_naming_the_broker_when_the_broker_is_unreachable(topology):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    web = topology.spawn(
        "web-without-broker", "web", WEB_BIND=f"127.0.0.1:{port}", WEB_WORKERS="1", CELERY_BROKER_URL=nowhere
    )
    try:
        topology.wait_for_web(url, web)
        ready = topology.request("GET", "/readyz", base_url=url)
        assert ready.status == 503
        assert ready.json() == {
            "status": "unavailable",
            "failed": ["broker"],
            "checks": {"database": "ok", "broker": "unreachable", "migrations": "ok"},
        }
        samples = metric_samples(topology.metrics(url=url))
        assert samples[("observatory_dependency_up", (("dependency", "broker"),))] == 0
        assert samples[("observatory_dependency_up", (("dependency", "database"),))] == 1
        assert not any(name == "observatory_celery_queue_depth" for name, _ in samples)
    finally:
        topology.stop("web-without-broker")


def test_metrics_need_the_token_and_report_rollup_lag_and_queue_depth(topology):
    from django.db import connection

    assert topology.request("GET", "/metrics").status == 403
    assert topology.request("GET", "/metrics", headers={"Authorization": "Bearer not-the-token-at-all"}).status == 403
    worker_url = f"http://127.0.0.1:{topology.worker_metrics_port}"
    assert topology.request("GET", "/metrics", base_url=worker_url).status == 403

    from observatory.tenancy.services import organization_get_or_create, project_create

    project = project_create(organization=organization_get_or_create(name="Ops", slug="ops"), name="Ops", slug="ops")
    pending = ("observatory_rollup_pending_minutes", ())

    def scraped_with_one_old_mark() -> dict | None:
        # The worker's rollup job may claim the mark before the scrape; then mark again.
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM calls_changedminute")
            cursor.execute(
                "INSERT INTO calls_changedminute (project_id, minute, marked_at) "
                "VALUES (%s, date_trunc('minute', now()), now() - interval '10 minutes')",
                [project.id],
            )
        samples = metric_samples(topology.metrics())
        return samples if samples[pending] else None

    samples = wait_until(scraped_with_one_old_mark, timeout=JOB_TIMEOUT, what="a scrape before the rollup job")
    assert samples[pending] == 1
    assert samples[("observatory_rollup_lag_seconds", ())] >= 600
    assert samples[("observatory_dependency_up", (("dependency", "broker"),))] == 1
    # Beat keeps sending jobs, so a scrape may catch one waiting for the worker: the depth of
    # the live queue is only known to come back to zero (exact counts: tests/observatory/test_metrics.py).
    depth = ("observatory_celery_queue_depth", (("queue", topology.queue),))
    assert depth in samples
    wait_until(lambda: metric_samples(topology.metrics())[depth] == 0, timeout=JOB_TIMEOUT,
               what="the worker draining the queue")


HEALTHZ_REQUESTS = ("observatory_http_requests_total", (("method", "GET"), ("status", "200"), ("view", "healthz")))


def counting_pids(topology) -> set[int]:
    """Processes with counts in the web's multiprocess directory (prometheus-client names its
    files by process id)."""
    directory = topology.workdir / "metrics-web"
    return {int(path.stem.rpartition("_")[2]) for path in directory.glob("counter_*.db")}


def test_counters_of_every_web_worker_are_added_up(topology):
    before = metric_samples(topology.metrics()).get(HEALTHZ_REQUESTS, 0)
    for _ in range(20):  # spread over the 3 workers, each counting on its own
        assert topology.request("GET", "/healthz").status == 200
    assert metric_samples(topology.metrics())[HEALTHZ_REQUESTS] == before + 20
    workers = {child.pid for child in psutil.Process(topology.processes["web"].popen.pid).children()}
    assert len(workers & counting_pids(topology)) >= 2


def test_the_counts_of_a_web_worker_that_died_stay_in_the_sum(topology):
    """granian replaces a worker that dies (--respawn-failed-workers) and, unlike gunicorn's
    child_exit, tells nobody. Nothing needs telling: mark_process_dead only drops live gauges,
    which are not used here, and a dead worker's counts must stay in the sums, counters never
    going down."""
    for _ in range(10):
        assert topology.request("GET", "/healthz").status == 200
    web = psutil.Process(topology.processes["web"].popen.pid)
    workers = web.children()
    victim = next(worker for worker in workers if worker.pid in counting_pids(topology))
    counted = metric_samples(topology.metrics())[HEALTHZ_REQUESTS]
    victim.kill()
    victim.wait(20)

    def replaced() -> bool:
        alive = {child.pid for child in web.children() if child.status() != psutil.STATUS_ZOMBIE}
        return len(alive) == len(workers) and victim.pid not in alive

    wait_until(replaced, timeout=60, what="granian replacing the killed worker")
    assert victim.pid in counting_pids(topology)
    assert metric_samples(topology.metrics())[HEALTHZ_REQUESTS] == counted
    topology.wait_for_web(topology.base_url, topology.processes["web"])  # the replacement serves too


def test_a_job_goes_through_the_broker_and_its_logs_carry_the_request_id(topology):
    day = last_partition_dropped()
    request_id = f"systest-{uuid.uuid4().hex}"
    task_id = topology.enqueue(PARTITIONS_MAINTAIN, request_id=request_id)

    line = wait_until(
        lambda: task_succeeded(topology, task_id),
        timeout=JOB_TIMEOUT,
        what="the job's success",
        detail=topology.processes["worker"].output,
    )
    assert line["request_id"] == request_id
    assert line["task_name"] == PARTITIONS_MAINTAIN
    assert partition_exists(day)

    samples = metric_samples(topology.metrics(url=f"http://127.0.0.1:{topology.worker_metrics_port}"))
    key = ("observatory_celery_tasks_total", (("outcome", "success"), ("task", PARTITIONS_MAINTAIN)))
    assert samples[key] >= 1


def test_requests_are_logged_as_json_with_their_id_and_without_secrets_or_bodies(topology):
    request_id = f"systest-{uuid.uuid4().hex}"
    secret = f"sk-obs-{uuid.uuid4().hex}"
    prompt = f"confidential prompt {uuid.uuid4().hex}"
    page = topology.request(
        "GET", "/admin/login/", headers={"X-Request-ID": request_id, "Authorization": f"Bearer {secret}"}
    )
    assert page.status == 200
    assert page.headers["X-Request-ID"] == request_id
    refused = topology.request(
        "POST", "/admin/login/", body=prompt.encode(), headers={"Authorization": f"Bearer {secret}"}
    )
    assert refused.status == 403  # no CSRF token
    generated = refused.headers["X-Request-ID"]
    assert generated and generated != request_id

    web = topology.processes["web"]

    def both_logged() -> dict[str, dict] | None:
        lines = {
            line["request_id"]: line
            for line in web.json_lines()
            if line.get("logger") == "observatory.requests" and line.get("request_id") in (request_id, generated)
        }
        return lines if len(lines) == 2 else None

    lines = wait_until(both_logged, timeout=30, what="both request log lines", detail=web.output)
    get = lines[request_id]
    assert (get["level"], get["method"], get["path"], get["status"]) == ("INFO", "GET", "/admin/login/", 200)
    assert lines[generated]["status"] == 403
    output = web.output()
    assert secret not in output
    assert prompt not in output


def test_events_over_http_are_stored_once_rolled_up_by_beat_and_the_worker_and_never_logged(topology):
    from observatory.calls.models import Call
    from observatory.tenancy.services import bootstrap

    slug = "ingest-" + uuid.uuid4().hex[:8]
    issued = bootstrap(email=f"{slug}@example.com", password="topology-password", project_slug=slug).issued
    headers = {"Authorization": f"Bearer {issued.secret}", "Content-Type": "application/json"}
    prompt = f"secret prompt {uuid.uuid4().hex}"
    start = datetime.now(UTC) - timedelta(minutes=2)
    bodies = [
        json.dumps({"events": [{"id": f"e{request}-{index}", "start_time": (start + timedelta(seconds=index)).isoformat(),
                                "latency_ms": 100 + 10 * index, "model": "gpt-4o-mini", "provider": "openai",
                                "input_tokens": 100, "output_tokens": 10, "feature": "systest", "input": prompt}
                               for index in range(10)]}).encode()
        for request in range(6)
    ]
    accepted_key = ("observatory_ingest_events_accepted_total", (("endpoint", "events"),))
    accepted_before = metric_samples(topology.metrics()).get(accepted_key, 0)
    for body in bodies + bodies[:2]:  # the last two are client retries
        response = topology.request("POST", "/api/v1/events", body=body, headers=headers)
        assert response.status == 200, response.body
    assert Call.objects.filter(project__slug=slug).count() == 60
    # Every web worker counted what it acknowledged; /metrics adds them up (retries included).
    assert metric_samples(topology.metrics())[accepted_key] == accepted_before + 80

    # Beat schedules the rollup job, the worker runs it, the metrics API then answers from it.
    def rolled_up():
        response = topology.request(
            "GET", "/api/v1/metrics?metrics=count,latency_p50&interval=none&start="
            + quote((start - timedelta(minutes=1)).isoformat()) + "&end=" + quote((start + timedelta(minutes=3)).isoformat()),
            headers={"Authorization": f"Bearer {issued.secret}"},
        )
        lag = metric_samples(topology.metrics())[("observatory_rollup_pending_minutes", ())]
        return response.status == 200 and lag == 0 and response.json()
    answer = wait_until(rolled_up, timeout=JOB_TIMEOUT, what="rollups of the new calls",
                        detail=topology.processes["worker"].output)
    (row,) = answer["rows"]
    assert row["count"] == 60 and 100 <= row["latency_p50"] <= 200

    for process in topology.processes.values():
        assert prompt not in process.output()


def test_a_worker_killed_in_the_middle_of_a_job_runs_it_after_restarting(topology):
    day = last_partition_dropped()
    with call_store_locked():
        killed_job = topology.enqueue(PARTITIONS_MAINTAIN)
        wait_until(
            lambda: app_backends(topology, "wait_event_type = 'Lock'"),
            timeout=JOB_TIMEOUT,
            what="the job waiting on the call store",
            detail=topology.processes["worker"].output,
        )
        topology.kill("worker")
    assert not partition_exists(day)

    # With no worker running, the next job waits in Redis, and /metrics counts it. Beat keeps
    # queueing its own jobs meanwhile (more of them the longer the killed job took to block),
    # so the depth is compared before and after: nothing takes jobs off the queue now.
    depth_key = ("observatory_celery_queue_depth", (("queue", topology.queue),))
    try:
        before = metric_samples(topology.metrics())[depth_key]
        queued_job = topology.enqueue(PARTITIONS_MAINTAIN)
        assert metric_samples(topology.metrics())[depth_key] >= before + 1
    finally:  # the tests after this one share the topology: they need a worker either way
        topology.spawn("worker", "worker")
    topology.wait_for_worker()
    for job in (queued_job, killed_job):  # acks_late: the killed job was never acknowledged
        wait_until(
            lambda job=job: task_succeeded(topology, job),
            timeout=JOB_TIMEOUT,
            what=f"job {job} succeeding",
            detail=topology.processes["worker"].output,
        )
    assert partition_exists(day)


def test_dropped_database_connections_the_web_and_the_worker_reconnect(topology):
    from observatory.tenancy.services import bootstrap

    slug = "reconnect-" + uuid.uuid4().hex[:8]
    issued = bootstrap(email=f"{slug}@example.com", password="topology-password", project_slug=slug).issued
    headers = {"Authorization": f"Bearer {issued.secret}", "Content-Type": "application/json"}

    def ingest(index: int):
        body = json.dumps({"id": f"{slug}-{index}", "start_time": datetime.now(UTC).isoformat(),
                           "model": "gpt-4o-mini", "input_tokens": 10, "output_tokens": 2}).encode()
        return topology.request("POST", "/api/v1/events", body=body, headers=headers).status

    for index in range(6):
        assert topology.request("GET", "/readyz").status == 200
        assert ingest(index) == 200  # the key lookup and the insert: prepared on each connection
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            [topology.application_name],
        )
        (terminated,) = cursor.fetchone()
    assert terminated >= 1

    # Every request after the cut is answered: each process notices its dead connection and
    # opens a new one (CONN_HEALTH_CHECKS), instead of failing the first request it serves.
    # Ingest first: its queries run on prepared-statement cursors of their own, which must
    # notice a dead connection as Django's cursors do.
    assert [ingest(index) for index in range(6, 15)] == [200] * 9
    statuses = [topology.request("GET", "/readyz").status for _ in range(9)]
    assert statuses == [200] * 9

    day = last_partition_dropped()
    job = topology.enqueue(PARTITIONS_MAINTAIN)
    wait_until(
        lambda: task_succeeded(topology, job),
        timeout=JOB_TIMEOUT,
        what="a job after the cut",
        detail=topology.processes["worker"].output,
    )
    assert partition_exists(day)


def test_mail_sent_by_the_app_reaches_the_smtp_server(topology):
    sent = topology.manage("sendtestemail", "ops@systest.invalid")
    assert sent.returncode == 0, sent.stderr
    message = topology.smtp.wait_for(lambda m: m["To"] == "ops@systest.invalid", what="the test email")
    assert message["From"] == "Observatory <observatory@systest.invalid>"


def noon_time_zone() -> str:
    """A zone where it is about noon now, so today's budget period cannot end during the test."""
    offset = 12 - datetime.now(UTC).hour  # Etc/GMT-N is N hours ahead of UTC
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def test_spend_over_a_budget_threshold_is_emailed_once_by_the_worker_and_beat(topology):
    from decimal import Decimal

    from observatory.budgets.services import budget_create
    from observatory.tenancy.models import Project
    from observatory.tenancy.services import api_key_create, organization_get_or_create, project_create

    organization = organization_get_or_create(name="Budgets", slug="budgets-systest")
    project = project_create(organization=organization, name="Budgeted", slug="budgeted")
    Project.objects.filter(pk=project.pk).update(time_zone=noon_time_zone())
    budget = budget_create(project=Project.objects.get(pk=project.pk), name="Daily cap", period="day",
                           amount=Decimal("10.00"), thresholds=[50, 80], recipients=["budget-owner@systest.invalid"],
                           notify_forecast=False)
    secret = api_key_create(project=project, name="systest").secret
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    events = [{"id": f"budget-evt-{i}", "start_time": now, "model": "gpt-4o", "cost": 0.5} for i in range(17)]
    pushed = topology.request("POST", "/api/v1/events", body=json.dumps({"events": events}).encode(),
                              headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    assert pushed.status == 200, pushed.body

    # Beat runs the evaluation every minute; the worker claims 80 % and sends it.
    def to_owner(message) -> bool:
        return message["To"] == "budget-owner@systest.invalid"

    message = topology.smtp.wait_for(lambda m: to_owner(m) and "80%" in m["Subject"], what="the 80% budget email",
                                     timeout=JOB_TIMEOUT + 60)
    assert message["Subject"] == '[budgeted] Budget "Daily cap" passed 80%: $8.50 of $10.00'
    text = next(part for part in message.walk() if part.get_content_type() == "text/plain")
    assert f"{topology.base_url}/p/budgeted/budgets/" in text.get_payload(decode=True).decode()

    # Another evaluation through the broker, finished: still one email, and none for 50 %.
    job = topology.enqueue("observatory.budgets.tasks.budgets_evaluate")
    wait_until(lambda: task_succeeded(topology, job), timeout=JOB_TIMEOUT, what="a second evaluation",
               detail=topology.processes["worker"].output)
    assert [m["Subject"] for m in topology.smtp.messages if to_owner(m)] == [message["Subject"]]
    from observatory.notifications.models import Delivery, DeliveryStatus

    delivery = Delivery.objects.get(notification__budget=budget)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 1)
