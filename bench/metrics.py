"""Benchmark of the metrics engine: rollup throughput and lag, and dashboard panel queries.

    .venv/bin/python bench/metrics.py [--calls 10000000] [--days 30] [--runs 7]

Builds (or reuses) a project with about --calls demo calls over the last --days days, rebuilds
its rollups from scratch and times the job (calls per second), times how long the job takes
to make fresh calls visible, then times each dashboard panel query --runs times and reports
the median. Prints one JSON document. Uses DATABASE_URL, or the embedded PostgreSQL of
`make run` when it is unset.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
    os.environ.setdefault("DEBUG", "1")
    from observatory.devstack.__main__ import DEVDATA
    from observatory.devstack.embedded_postgres import ensure_database_url

    ensure_database_url(DEVDATA)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _project(slug: str):
    from observatory.tenancy.models import Project
    from observatory.tenancy.services import api_key_create, organization_get_or_create, project_create

    project = Project.objects.filter(slug=slug).first()
    if project is None:
        organization = organization_get_or_create(name="Bench", slug=f"{slug}-org")
        project = project_create(organization=organization, name="Metrics bench", slug=slug)
    return project, api_key_create(project=project, name="bench").secret


def _count(project, model_calls: bool) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        kinds = " AND kind IN ('generation', 'embedding')" if model_calls else ""
        cursor.execute(f"SELECT count(*) FROM calls_call WHERE project_id = %s{kinds}", [project.pk])
        return cursor.fetchone()[0]


def _median_ms(function, runs: int) -> dict:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(timings), 1), "runs_ms": [round(t, 1) for t in timings]}


def _fresh_calls(project, count: int) -> None:
    from observatory.calls.records import CallRecord
    from observatory.calls.services import calls_write

    now = datetime.now(UTC)
    calls_write(project=project, records=[
        CallRecord(trace_id=f"bench-{now.timestamp()}-{i}", span_id=f"s{i}", start_time=now - timedelta(seconds=i % 50),
                   provider="openai", model="gpt-4o-mini", latency_ms=300.0 + i, input_tokens=500, output_tokens=80,
                   feature="support-chat", environment="production", user_id=f"user_{i % 40:05d}")
        for i in range(count)
    ])


def _options(argv: list[str], *, description: str, project: str) -> argparse.Namespace:
    """The options every benchmark built on demo data takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="Processes writing demo calls.")
    parser.add_argument("--project", default=project)
    return parser.parse_args(argv)


def _demo_data(project, options: argparse.Namespace) -> float | None:
    """Top the project up to about --calls demo calls; the seconds that took, None if none."""
    from observatory.demo.traffic import demo_traffic_generate

    existing = _count(project, model_calls=False)
    if existing >= options.calls * 0.95:
        return None
    started = time.monotonic()
    demo_traffic_generate(project=project, calls=options.calls - existing, days=options.days, seed=1,
                          workers=options.workers)
    return round(time.monotonic() - started, 1)


def main(argv: list[str]) -> int:
    options = _options(argv, description=__doc__.splitlines()[0], project="bench-metrics")
    _django()

    from django.conf import settings
    from django.test import Client

    from observatory.metrics.selectors import metrics_query
    from observatory.metrics.services import rollups_compute, rollups_reset

    project, secret = _project(options.project)
    generated_seconds = _demo_data(project, options)
    calls, model_calls = _count(project, model_calls=False), _count(project, model_calls=True)

    rollups_reset(project=project)
    started = time.monotonic()
    report = rollups_compute(project_ids=[project.pk])
    rollup_seconds = time.monotonic() - started

    # Lag: the job's time to make calls of the current minute visible; at worst a call waits
    # one beat interval for the job to start, then this.
    _fresh_calls(project, 500)
    started = time.monotonic()
    rollups_compute(project_ids=[project.pk])
    fresh_seconds = time.monotonic() - started

    end = datetime.now(UTC)
    start = end - timedelta(days=options.days)
    window = {"project": project, "start": start, "end": end}
    panels = {
        "p50_p99_latency_by_model_per_hour": lambda: metrics_query(
            **window, interval="hour", group_by=["model"], metrics=["latency_p50", "latency_p99"]),
        "cost_by_day_and_model": lambda: metrics_query(
            **window, interval="day", group_by=["model"], metrics=["cost"]),
        "error_rate_by_feature": lambda: metrics_query(
            **window, group_by=["feature"], metrics=["error_rate", "count"]),
        "top_users_by_cost": lambda: metrics_query(
            **window, group_by=["user_id"], metrics=["cost", "count"], order_by="-cost", limit=10),
    }
    client = Client(SERVER_NAME="localhost", HTTP_AUTHORIZATION=f"Bearer {secret}")
    api_query = {"metrics": "latency_p50,latency_p99", "interval": "hour", "group_by": "model",
                 "start": start.isoformat(), "end": end.isoformat()}
    panels["api_p50_p99_latency_by_model_per_hour"] = lambda: client.get("/api/v1/metrics", api_query)
    timings = {name: _median_ms(query, options.runs) for name, query in panels.items()}
    points = len(panels["p50_p99_latency_by_model_per_hour"]().rows)

    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "data": {"calls": calls, "model_calls": model_calls, "days": options.days,
                 "generated_seconds": generated_seconds},
        "rollup_from_scratch": {
            "seconds": round(rollup_seconds, 1),
            "calls_per_second": round(calls / rollup_seconds),
            "model_calls_per_second": round(model_calls / rollup_seconds),
            "minutes": report.minutes,
            "batches": report.batches,
        },
        "lag": {
            "job_seconds_for_fresh_calls": round(fresh_seconds, 3),
            "beat_interval_seconds": settings.ROLLUP_INTERVAL_SECONDS,
            "worst_case_seconds": round(settings.ROLLUP_INTERVAL_SECONDS + fresh_seconds, 1),
        },
        "panels": timings,
        "p50_p99_latency_by_model_per_hour_points": points,
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
