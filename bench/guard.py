"""Benchmark of the budget guard: GET /api/v1/guard through Django (key auth, throttle, cache).

    .venv/bin/python bench/guard.py [--requests 2000] [--budgets 5]

Sets up (or reuses) a project with --budgets hard-capped budgets and a few calls, records their
spend as the refresh job does, then times --requests guard requests answered from the cache,
the same with the cache cleared before each (the cold path: one indexed query for the
budgets), and the refresh job itself. Prints one JSON document; the web server and network
are not included. Uses DATABASE_URL, or the embedded PostgreSQL of `make run` when unset.
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
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.metrics import _django, _project  # noqa: E402 (after the path is set)

SCOPES = [("project", ""), ("model", "gpt-4o"), ("feature", "support-chat"), ("tag", "batch"), ("user", "user_1")]


def _percentiles(timings: list[float]) -> dict:
    ordered = sorted(timings)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)  # noqa: E731
    return {"p50_ms": pick(0.5), "p95_ms": pick(0.95), "p99_ms": pick(0.99),
            "mean_ms": round(statistics.mean(ordered), 3)}


def _timed(function, runs: int) -> dict:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    return _percentiles(timings)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--budgets", type=int, default=5)
    parser.add_argument("--project", default="bench-guard")
    options = parser.parse_args(argv)
    _django()

    from django.test import Client

    from observatory.budgets.models import Budget
    from observatory.budgets.services import budget_create, budget_guards_refresh, guard_forget
    from observatory.calls.records import CallRecord
    from observatory.calls.services import calls_write
    from observatory.tenancy.models import ApiKey

    project, secret = _project(options.project)
    ApiKey.objects.filter(project=project).update(rate_limit_per_second=0)  # measure the guard, not the limit
    now = datetime.now(UTC)
    calls_write(project=project, records=[
        CallRecord(trace_id=f"guard-{now.timestamp()}-{i}", span_id="s", start_time=now - timedelta(minutes=i),
                   model="gpt-4o", provider="openai", feature="support-chat", user_id="user_1", tags=["batch"],
                   cost=Decimal("0.01"))
        for i in range(100)
    ])
    Budget.objects.filter(project=project).delete()
    for index in range(options.budgets):
        scope, value = SCOPES[index % len(SCOPES)]
        budget_create(project=project, name=f"cap {index}", scope=scope, scope_value=value,
                      amount=Decimal("1000.00"), hard_cap=True)
    refresh = _timed(budget_guards_refresh, 20)

    client = Client(SERVER_NAME="localhost", HTTP_AUTHORIZATION=f"Bearer {secret}")
    query = {"model": "gpt-4o", "feature": "support-chat", "user": "user_1", "tag": "batch"}
    assert client.get("/api/v1/guard", query).status_code == 200
    cached = _timed(lambda: client.get("/api/v1/guard", query), options.requests)

    def cold() -> None:
        guard_forget(project_id=project.pk)
        client.get("/api/v1/guard", query)

    uncached = _timed(cold, options.requests // 4)

    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "budgets": options.budgets,
        "guard_request_cached": cached,
        "guard_request_cache_cleared": uncached,
        "guard_refresh_job": refresh,
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
