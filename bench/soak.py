"""A bounded soak of the production topology on loopback, as one JSON object.

    .venv/bin/python bench/soak.py [--duration 180] [--rate 40] [--concurrency 8]

Starts web (granian), a Celery worker and beat as production runs them (tests/system/
topology.py), against DATABASE_URL or the embedded PostgreSQL and the broker in
CELERY_BROKER_URL (Redis on 127.0.0.1 by default). For `--duration` seconds, `--concurrency`
clients POST to /api/v1/events at a steady `--rate` requests per second in all, each request
one to twenty events of which about 80 % are new, 10 % repeat an event already acknowledged
and 10 % are invalid; meanwhile beat and the worker run rollups every second, and budget and
alert-rule evaluations every minute, for the soak's project. The RSS of every process (web
main process and workers, worker and its pool, beat) is sampled throughout. Then it stops by
itself and checks:

- stored calls equal exactly the events acknowledged as accepted, each stored once;
- every repeat was answered as a duplicate, every invalid event rejected naming a field;
- once the rollup job has caught up, rolled-up counts, tokens and cost equal the raw calls.

The web server never recycles its workers during a soak (WEB_WORKERS_MAX_RSS=0, and no
WEB_WORKERS_LIFETIME): recycling would hide a leak.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MIB = 1024 * 1024
# What a soak's processes get on top of the topology's production settings.
SOAK_ENV = {"ROLLUP_INTERVAL_SECONDS": "1", "WEB_WORKERS_MAX_RSS": "0", "WEB_WORKERS_LIFETIME": "0"}
CATCH_UP_TIMEOUT = 180  # an upper bound for the last rollups, not a speed claim
# How each expected answer is counted among what was sent.
SENT_AS = {"accepted": "new", "duplicate": "repeat", "rejected": "invalid"}
INVALID_EVENTS = (
    ({"input_tokens": -5}, "input_tokens"),
    ({"start_time": "yesterday-ish"}, "start_time"),
    ({"kind": "telepathy"}, "kind"),
    ({"output_tokens": "many"}, "output_tokens"),
)


@dataclass
class Tally:
    """What the clients sent and what the server answered, event by event."""

    sent: Counter = field(default_factory=Counter)  # new / duplicate / invalid
    answered: Counter = field(default_factory=Counter)  # accepted / duplicate / rejected / unanswered
    mismatches: list[str] = field(default_factory=list)  # an answer other than the one expected
    statuses: Counter = field(default_factory=Counter)
    accepted_ids: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def soak_event(run: str, serial: int, now: datetime) -> dict:
    return {
        "id": f"{run}-{serial}",
        "trace_id": f"{run}-t{serial // 3}",
        "start_time": (now - timedelta(milliseconds=serial % 5000)).isoformat(),
        "latency_ms": 200 + serial % 1800,
        "provider": "openai",
        "model": ("gpt-4o-mini", "gpt-4o", "claude-haiku-4-5")[serial % 3],
        "input_tokens": 300 + serial % 700,
        "output_tokens": 20 + serial % 200,
        "feature": ("support-chat", "search", "classify")[serial % 3],
        "user_id": f"user-{serial % 97}",
        **({"error_type": "rate_limit", "http_status": 429} if serial % 23 == 0 else {"finish_reason": "stop"}),
        "input": [{"role": "user", "content": f"question {serial}"}],
        "output": f"answer {serial}",
    }


class Client(threading.Thread):
    """One keep-alive connection sending its share of the rate until the deadline."""

    def __init__(self, *, index: int, port: int, secret: str, interval: float, deadline: float, tally: Tally,
                 run: str) -> None:
        super().__init__(name=f"soak-client-{index}", daemon=True)
        self.port, self.secret, self.interval, self.deadline, self.tally = port, secret, interval, deadline, tally
        self.run_id = f"{run}-c{index}"
        self.random = random.Random(index)
        self.serial = 0
        self.acknowledged: list[dict] = []  # events this client saw accepted: safe to repeat

    def batch(self) -> tuple[list[dict], list[tuple[str, str | None]]]:
        """Events to send, and what each should get back: (outcome, field) per event."""
        now = datetime.now(UTC)
        events, expected = [], []
        for _ in range(self.random.randint(1, 20)):
            roll = self.random.random()
            if roll < 0.1 and self.acknowledged:
                events.append(self.random.choice(self.acknowledged))
                expected.append(("duplicate", None))
            elif roll < 0.2:
                self.serial += 1
                broken, name = self.random.choice(INVALID_EVENTS)
                events.append({**soak_event(self.run_id, self.serial, now), **broken})
                expected.append(("rejected", name))
            else:
                self.serial += 1
                events.append(soak_event(self.run_id, self.serial, now))
                expected.append(("accepted", None))
        return events, expected

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Authorization": f"Bearer {self.secret}", "Content-Type": "application/json"}
        next_at = time.monotonic() + self.random.random() * self.interval  # spread the clients out
        while True:
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if time.monotonic() >= self.deadline:
                break
            next_at += self.interval
            events, expected = self.batch()
            started = time.perf_counter()
            try:
                connection.request("POST", "/api/v1/events", body=json.dumps({"events": events}), headers=headers)
                response = connection.getresponse()
                status, body = response.status, response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                self.record(events, expected, f"error:{type(error).__name__}", None, 0.0)
                continue
            self.record(events, expected, status, body, time.perf_counter() - started)
        connection.close()

    def record(self, events, expected, status, body, seconds: float) -> None:
        results = json.loads(body)["results"] if status in (200, 207, 400) and body else None
        with self.tally.lock:
            self.tally.statuses[str(status)] += 1
            if seconds:
                self.tally.latencies.append(seconds)
            for index, (event, (outcome, field_name)) in enumerate(zip(events, expected)):
                self.tally.sent[SENT_AS[outcome]] += 1
                if results is None:
                    self.tally.answered["unanswered"] += 1
                    continue
                result = results[index]
                answer = {"accepted": "accepted", "duplicate": "duplicate"}.get(result["status"], "rejected")
                self.tally.answered[answer] += 1
                if answer == "accepted":
                    self.tally.accepted_ids.add(event["id"])
                    self.acknowledged.append(event)
                named = {error.get("field") for error in result.get("errors", [])}
                if answer != outcome or (field_name and field_name not in named):
                    self.tally.mismatches.append(f"{event['id']}: expected {outcome} {field_name or ''}, got {result}")


def process_tree(topology) -> dict[str, object]:
    """Every live process of the topology by a stable label: role:pid (and the parent's role)."""
    import psutil

    found = {}
    for name, process in topology.processes.items():
        try:
            root = psutil.Process(process.popen.pid)
            for member in [root, *root.children(recursive=True)]:
                found[f"{name}:{member.pid}"] = member
        except psutil.NoSuchProcess:
            continue
    return found


def sample_rss(topology, samples: dict[str, list[tuple[float, int]]], started: float) -> None:
    import psutil

    for label, member in process_tree(topology).items():
        try:
            samples.setdefault(label, []).append((time.monotonic() - started, member.memory_info().rss))
        except psutil.NoSuchProcess:
            continue


def slope_mib_per_minute(points: list[tuple[float, int]]) -> float | None:
    """Least-squares slope of RSS over time, after the first fifth (imports, caches, first queries warm up)."""
    steady = points[len(points) // 5:]
    if len(steady) < 3:
        return None
    times = [t for t, _ in steady]
    sizes = [r / MIB for _, r in steady]
    return round(statistics.linear_regression(times, sizes).slope * 60, 3)


def rss_report(samples: dict[str, list[tuple[float, int]]]) -> dict[str, dict]:
    report = {}
    for label, points in sorted(samples.items()):
        sizes = [r for _, r in points]
        report[label] = {
            "samples": len(points),
            "start_mib": round(sizes[0] / MIB, 1),
            "peak_mib": round(max(sizes) / MIB, 1),
            "end_mib": round(sizes[-1] / MIB, 1),
            "slope_mib_per_min": slope_mib_per_minute(points),
        }
    return report


def soak_project(run: str):
    """A project with a key that is never throttled, a budget and an alert rule, so that the
    evaluation jobs have real work every minute."""
    from observatory.alerts.services import rule_create
    from observatory.budgets.services import budget_create
    from observatory.tenancy.models import ApiKey
    from observatory.tenancy.services import bootstrap

    result = bootstrap(email=f"{run}@soak.invalid", password=secrets.token_urlsafe(16), project_slug=run,
                       key_name="soak")
    ApiKey.objects.filter(pk=result.issued.key.pk).update(rate_limit_per_second=0)
    budget_create(project=result.project, name="Soak monthly", period="month", amount=Decimal("1000000"),
                  thresholds=[50, 80, 100], recipients=[f"budget@{run}.soak.invalid"], notify_forecast=False)
    rule_create(project=result.project, name="Soak errors", kind="error_rate", threshold=Decimal(50),
                window_minutes=5, min_calls=10, recipients=[f"oncall@{run}.soak.invalid"])
    return result.project, result.issued.secret


def stored_identities(project_id: int) -> tuple[int, set[str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT span_id FROM calls_call WHERE project_id = %s", [project_id])
        span_ids = [row[0] for row in cursor.fetchall()]
    return len(span_ids), set(span_ids)


def run_soak(topology, *, duration: float, rate: float, concurrency: int, sample_every: float = 2.0) -> dict:
    """Drive a started topology for `duration` seconds and check what it stored; the report."""
    from tests.metrics_helpers import rollups_caught_up, rollups_versus_raw

    run = f"soak-{uuid.uuid4().hex[:8]}"
    project, secret = soak_project(run)
    tally = Tally()
    samples: dict[str, list[tuple[float, int]]] = {}
    started = time.monotonic()
    deadline = started + duration
    clients = [
        Client(index=i, port=topology.web_port, secret=secret, interval=concurrency / rate, deadline=deadline,
               tally=tally, run=run)
        for i in range(concurrency)
    ]
    for client in clients:
        client.start()
    while time.monotonic() < deadline:
        sample_rss(topology, samples, started)
        time.sleep(min(sample_every, max(0.0, deadline - time.monotonic())))
    for client in clients:
        client.join(120)
    sample_rss(topology, samples, started)
    elapsed = time.monotonic() - started

    caught_up_at = None
    catch_up_deadline = time.monotonic() + CATCH_UP_TIMEOUT
    while time.monotonic() < catch_up_deadline:
        if rollups_caught_up(project.pk):
            caught_up_at = time.monotonic()
            break
        time.sleep(0.5)
    stored, stored_ids = stored_identities(project.pk)
    totals = rollups_versus_raw(project.pk)
    checks = {
        "every_answer_as_expected": not tally.mismatches and tally.answered["unanswered"] == 0,
        "stored_equals_accepted": stored == tally.answered["accepted"] == len(tally.accepted_ids),
        "stored_ids_equal_accepted_ids": stored_ids == tally.accepted_ids,
        "duplicates_stored_once": tally.answered["duplicate"] == tally.sent["repeat"],
        "invalid_rejected": tally.answered["rejected"] == tally.sent["invalid"],
        "rollups_equal_raw": caught_up_at is not None and len(set(totals.values())) == 1,
    }
    latencies = sorted(tally.latencies)
    return {
        "web_server": web_server(topology),
        "duration_s": round(elapsed, 1),
        "target_requests_per_s": rate,
        "concurrency": concurrency,
        "requests": sum(tally.statuses.values()),
        "requests_per_s": round(sum(tally.statuses.values()) / elapsed, 1),
        "statuses": dict(tally.statuses),
        "latency_ms": {
            "p50": round(statistics.median(latencies) * 1000, 1) if latencies else None,
            "p99": round(statistics.quantiles(latencies, n=100)[98] * 1000, 1) if len(latencies) > 1 else None,
        },
        "events_sent": dict(tally.sent),
        "events_answered": dict(tally.answered),
        "stored_calls": stored,
        "rollups_versus_raw": {name: [str(v) for v in values] for name, values in totals.items()},
        "rollups_caught_up_after_s": round(caught_up_at - started - elapsed, 1) if caught_up_at else None,
        "checks": checks,
        "ok": all(checks.values()),
        "mismatches": tally.mismatches[:20],
        "rss": rss_report(samples),
        "processes_alive": {name: process.alive() for name, process in topology.processes.items()},
    }


def web_server(topology) -> dict:
    """What served the soak: the web role as production starts it, with the topology's sizes."""
    from bench.ingest import web_server as described

    env = topology.environment()
    return described(int(env["WEB_WORKERS"]), int(env["WEB_THREADS"]))


def machine() -> dict:
    import platform

    import psutil

    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 1024**3),
            "load_average": [round(load, 2) for load in os.getloadavg()], "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180, help="seconds of traffic (default 180)")
    parser.add_argument("--rate", type=float, default=40, help="requests per second, all clients together")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds between RSS samples")
    options = parser.parse_args()

    from observatory.devstack.embedded_postgres import ensure_database_url

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    ensure_database_url(ROOT / ".devdata")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from tests.system.topology import DEFAULT_REDIS_URL, Topology, broker_problem

    call_command("migrate", verbosity=0)
    broker_url = os.environ.get("CELERY_BROKER_URL") or DEFAULT_REDIS_URL
    problem = broker_problem(broker_url)
    if problem:
        sys.exit(f"The soak needs a broker server: {broker_url} does not answer ({problem}).")
    before = machine()
    with tempfile.TemporaryDirectory(prefix="observatory-soak-") as workdir:
        topology = Topology(workdir=Path(workdir), database=dict(connection.settings_dict), broker_url=broker_url,
                            extra_env=SOAK_ENV)
        try:
            topology.start()
            report = run_soak(topology, duration=options.duration, rate=options.rate,
                              concurrency=options.concurrency, sample_every=options.sample_every)
        finally:
            topology.close()
    print(json.dumps({"machine": before, "load_average_after": machine()["load_average"],
                      "started": datetime.now(UTC).isoformat(timespec="seconds"), **report}, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
