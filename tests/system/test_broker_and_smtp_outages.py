"""The broker and the SMTP server going away under the production topology, each behind a proxy
this module can cut (see db_proxy.py).

- Broker down: ingest does not need it, so clients keep getting 2xx and every call is stored;
  rollups stop; once the broker is back, beat and the worker catch up and the rolled-up sums
  equal the raw calls.
- SMTP down: a budget email due meanwhile is attempted, fails, stays pending and is retried;
  once SMTP is back it is delivered exactly once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import pytest

from observatory.calls.models import Call
from observatory.calls.partitions import call_store_maintain
from tests.metrics_helpers import rollups_caught_up, rollups_versus_raw
from tests.system.db_proxy import DatabaseProxy
from tests.system.topology import SmtpSink, Topology, wait_until

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

DEFAULT_PORTS = {"redis": 6379, "rediss": 6380, "amqp": 5672, "amqps": 5671}
JOB_TIMEOUT = 120  # an upper bound for jobs to be picked up after a reconnect, not a speed claim


@dataclass
class Outages:
    topology: Topology
    broker: DatabaseProxy
    smtp: DatabaseProxy


@pytest.fixture(scope="module")
def outages(broker_url, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Outages]:
    """The whole topology with its broker and its SMTP server each behind a proxy."""
    from django.db import connection

    real = urlsplit(broker_url)
    broker = DatabaseProxy.to(real.hostname or "127.0.0.1", real.port or DEFAULT_PORTS[real.scheme]).start()
    credentials = real.netloc.rpartition("@")[0]
    netloc = f"{credentials}@" * bool(credentials) + f"127.0.0.1:{broker.port}"
    proxied_broker = urlunsplit(real._replace(netloc=netloc))
    sink = SmtpSink()
    smtp = DatabaseProxy.to("127.0.0.1", sink.port).start()
    running = Topology(
        workdir=tmp_path_factory.mktemp("outages"), database=dict(connection.settings_dict), broker_url=proxied_broker,
        smtp=sink,
        extra_env={"EMAIL_PORT": str(smtp.port), "EMAIL_TIMEOUT": "3", "ROLLUP_INTERVAL_SECONDS": "1"},
    )
    try:
        yield Outages(running.start(), broker, smtp)
    finally:
        broker.restore()
        smtp.restore()
        running.close()
        broker.stop()
        smtp.stop()
        with django_db_blocker.unblock():
            call_store_maintain()


def new_project_key(prefix: str) -> tuple[int, str]:
    from observatory.tenancy.services import bootstrap

    slug = f"{prefix}-{uuid.uuid4().hex[:8]}"
    result = bootstrap(email=f"{slug}@example.com", password="outage-test-password", project_slug=slug)
    return result.project.pk, result.issued.secret


def events(prefix: str, count: int, *, cost: float | None = None) -> list[dict]:
    start = datetime.now(UTC) - timedelta(minutes=3)
    return [
        {"id": f"{prefix}-{index}", "start_time": (start + timedelta(seconds=index)).isoformat(),
         "latency_ms": 200 + index, "model": "gpt-4o-mini", "provider": "openai",
         "input_tokens": 40 + index, "output_tokens": 4 + index % 7, **({"cost": cost} if cost is not None else {})}
        for index in range(count)
    ]


def send(topology: Topology, secret: str, batch: list[dict]):
    return topology.request("POST", "/api/v1/events", body=json.dumps({"events": batch}).encode(),
                            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})


def job_done(topology: Topology, task_id: str) -> bool:
    return any(line.get("task_id") == task_id and "succeeded" in line.get("message", "")
               for line in topology.processes["worker"].json_lines())


def test_ingest_keeps_acknowledging_without_the_broker_and_rollups_catch_up_when_it_returns(outages):
    topology = outages.topology
    project_id, secret = new_project_key("no-broker")

    before = send(topology, secret, events("before", 20))
    assert before.status == 200, before.body
    wait_until(lambda: rollups_caught_up(project_id), timeout=JOB_TIMEOUT, what="the first rollup",
               detail=lambda: topology.processes["worker"].output()[-3000:])

    outages.broker.cut()
    try:
        # Proof the broker is really gone for these processes: readiness says so.
        wait_until(lambda: topology.request("GET", "/readyz").status == 503, timeout=30, what="/readyz to see it")
        assert topology.request("GET", "/readyz").json()["failed"] == ["broker"]
        during = [events(f"during{batch}", 25) for batch in range(4)]
        for batch in during:
            response = send(topology, secret, batch)
            assert response.status == 200, response.body
            assert response.json()["accepted"] == 25
        retry = send(topology, secret, during[0])  # a client that missed the answer sends it again
        assert retry.status == 200 and retry.json()["duplicates"] == 25
        assert Call.objects.filter(project_id=project_id).count() == 120
    finally:
        outages.broker.restore()

    wait_until(lambda: rollups_caught_up(project_id), timeout=JOB_TIMEOUT,
               what="rollups to catch up once the broker is back",
               detail=lambda: f"{rollups_versus_raw(project_id)}\n{topology.processes['worker'].output()[-3000:]}")
    totals = rollups_versus_raw(project_id)
    assert totals["raw"][0] == 120
    assert set(totals.values()) == {totals["raw"]}
    assert all(process.alive() for process in topology.processes.values())


def test_a_budget_email_due_while_smtp_is_down_is_retried_and_sent_once_when_it_returns(outages):
    from observatory.budgets.services import budget_create
    from observatory.notifications.models import Delivery, DeliveryStatus
    from observatory.tenancy.models import Project

    topology = outages.topology
    project_id, secret = new_project_key("no-smtp")
    project = Project.objects.get(pk=project_id)
    recipient = f"owner-{project.slug}@systest.invalid"
    budget = budget_create(project=project, name="Monthly cap", period="month", amount=Decimal("10.00"),
                           thresholds=[80], recipients=[recipient], notify_forecast=False)

    def to_owner() -> list:
        return [message for message in topology.smtp.messages if message["To"] == recipient]

    def delivery() -> Delivery | None:
        return Delivery.objects.filter(notification__budget=budget).first()

    outages.smtp.cut()
    try:
        assert send(topology, secret, events("spend", 17, cost=0.5)).status == 200
        # Budgets read spend from rollups: evaluate once the spend is rolled up.
        wait_until(lambda: rollups_caught_up(project_id), timeout=JOB_TIMEOUT, what="the spend rolled up")
        topology.enqueue("observatory.budgets.tasks.budgets_evaluate")
        failed = wait_until(lambda: (d := delivery()) and d.attempts >= 1 and d.status == DeliveryStatus.PENDING and d,
                            timeout=JOB_TIMEOUT, what="a first, failed attempt",
                            detail=lambda: topology.processes["worker"].output()[-3000:])
        assert failed.last_error
        # The backoff ends (as the clock would make it) while SMTP is still down: tried again, failed again.
        Delivery.objects.filter(pk=failed.pk).update(not_before=datetime.now(UTC))
        topology.enqueue("observatory.notifications.tasks.notifications_dispatch")
        wait_until(lambda: delivery().attempts >= 2 and delivery().status == DeliveryStatus.PENDING,
                   timeout=JOB_TIMEOUT, what="a second, failed attempt",
                   detail=lambda: topology.processes["worker"].output()[-3000:])
        assert to_owner() == []
    finally:
        outages.smtp.restore()

    Delivery.objects.filter(pk=failed.pk).update(not_before=datetime.now(UTC))
    topology.enqueue("observatory.notifications.tasks.notifications_dispatch")
    message = topology.smtp.wait_for(lambda m: m["To"] == recipient, what="the budget email once SMTP is back",
                                     timeout=JOB_TIMEOUT)
    assert "passed 80%" in message["Subject"]
    sent = wait_until(lambda: (d := delivery()).status == DeliveryStatus.SENT and d, timeout=JOB_TIMEOUT,
                      what="the delivery recorded as sent")
    assert sent.attempts == 3 and sent.last_error  # the failures stay in the history

    # More evaluations and dispatches once it was sent: nothing goes out twice.
    for task in ("observatory.budgets.tasks.budgets_evaluate",
                 "observatory.notifications.tasks.notifications_dispatch"):
        job = topology.enqueue(task)
        wait_until(lambda: job_done(topology, job), timeout=JOB_TIMEOUT, what=f"{task} after the send")
    assert len(to_owner()) == 1
    assert Delivery.objects.filter(notification__budget=budget).count() == 1
