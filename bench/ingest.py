"""Ingest throughput on loopback, next to the raw COPY rate of the same rows, as JSON.

    .venv/bin/python bench/ingest.py [--events 50000] [--rounds 3] [--workers 2] [--threads N] [--concurrency 4]

Starts the web role as production does (`python -m observatory.deploy web`: granian) against
DATABASE_URL or the embedded PostgreSQL, then, in each of --rounds rounds:
1. for 1,000 and for 100 events per request: the raw COPY of --events rows like those the write
   path stores, straight into calls_call (the ceiling), then POST /api/v1/events with as many
   events from concurrent clients; the share is the endpoint's rate over that round's ceiling;
2. single-event requests, driven by wrk when it is installed (Debian package `wrk`), else by
   Python clients with keep-alive connections.
Each phase also reports `cpu_per_event`: CPU microseconds per event spent by the web server's
processes and by the database's (when it runs on this machine), and how many of the machine's
cores were busy, clients included. Two cores ingest at half the rate of one core's COPY only
if everything an event costs stays within four times what the COPY spends on a row.
The ceiling is measured next to each phase, not once for the run, because both move: the COPY
slows as today's partition grows, and a shared machine's speed changes from minute to minute
(a fixed loop of Python took 0.28 to 0.54 s from one second to the next on the 2-core machine
of bench/README.md). Medians over the rounds are reported, with every round.
Every event is new (unique id), so each phase measures real inserts; events come in traces of
four spans, as real traffic does, since trace summaries are maintained per trace.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _django_setup() -> None:
    from observatory.devstack.embedded_postgres import ensure_database_url

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    ensure_database_url(ROOT / ".devdata")
    import django

    django.setup()


def machine() -> dict:
    memory_kib = 0
    try:
        with open("/proc/meminfo") as meminfo:
            memory_kib = int(meminfo.readline().split()[1])
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "memory_gib": round(memory_kib / 1024**2), "python": platform.python_version(),
            "platform": platform.platform()}


SPANS_PER_TRACE = 4  # a workflow span, a retrieval and two model calls, as real traces go


def event(now: datetime, index: int, run: str = "") -> dict:
    trace = f"{run}{index // SPANS_PER_TRACE}"
    return {
        "id": f"{trace}-{index % SPANS_PER_TRACE}-{uuid.uuid4().hex[:8]}",
        "trace_id": trace,
        "start_time": (now - timedelta(milliseconds=index % 60_000)).isoformat(),
        "latency_ms": 400 + index % 900,
        "time_to_first_token_ms": 150 + index % 200,
        "provider": "openai",
        "model": ("gpt-4o-mini", "gpt-4o", "claude-haiku-4-5")[index % 3],
        "input_tokens": 800 + index % 500,
        "output_tokens": 100 + index % 300,
        "finish_reason": "stop",
        "user_id": f"user_{index % 500}",
        "session_id": f"session_{index % 2000}",
        "feature": ("support-chat", "search-answer", "classify")[index % 3],
        "environment": "production",
        "prompt_name": "support",
        "prompt_version": "v4",
        "tags": ["bench"],
        "metadata": {"region": "eu-west-1", "temperature": 0.2},
        "input": [{"role": "user", "content": "How do I export my invoices as CSV for last quarter?"}],
        "output": "Open Billing, choose Invoices, filter by date and press Export CSV.",
    }


def raw_copy_rate(project, events: list[dict]) -> float:
    """Rows per second COPYed straight into calls_call: the ceiling the write path is held to."""
    from django.db import connection, transaction
    from psycopg.types.json import set_json_dumps

    from ingest.limits import IngestWindow
    from ingest.native.normalise import event_normalise
    from observatory.calls.rows import CALL_COLUMNS, RowBuilder

    window = IngestWindow.now()
    records = [event_normalise(item, window=window).record for item in events]
    builder = RowBuilder(project)
    rows = [builder.row(record)[: len(CALL_COLUMNS)] for record in records]
    columns = [name for name, _ in CALL_COLUMNS]
    types = ["jsonb" if name == "metadata" else kind for name, kind in CALL_COLUMNS]
    started = time.perf_counter()
    with transaction.atomic(), connection.connection.cursor() as cursor:
        set_json_dumps(lambda text: text, context=cursor)  # metadata is JSON text already
        with cursor.copy(f"COPY calls_call ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
    return len(rows) / (time.perf_counter() - started)


class CpuMeter:
    """CPU seconds the web server's processes and the database's spent over a phase, and how
    busy the whole machine was: where each event's cost goes. The database is measured only
    when it runs on this machine (the embedded one, or a local DATABASE_URL); its processes are
    the children of the postmaster that serves this benchmark's connection."""

    def __init__(self, web_pid: int) -> None:
        import psutil
        from django.db import connection

        self._psutil = psutil
        self._web = psutil.Process(web_pid)
        self._postmaster = None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pid = cursor.fetchone()[0]
        try:
            backend = psutil.Process(backend_pid)
            # The backend's pid is the server's: on another machine it may name any process here.
            if backend.name().startswith("postgres"):
                self._postmaster = psutil.Process(backend.ppid())
        except psutil.Error:
            pass  # a server on another machine: its processes are not ours to read

    def _tree(self, root) -> dict[int, float]:
        times = {}
        for process in [root, *root.children(recursive=True)]:
            try:
                cpu = process.cpu_times()
            except self._psutil.Error:
                continue  # ended meanwhile
            times[process.pid] = cpu.user + cpu.system
        return times

    def _sample(self) -> tuple[dict[int, float], dict[int, float], object]:
        database = self._tree(self._postmaster) if self._postmaster else {}
        return self._tree(self._web), database, self._psutil.cpu_times()

    def start(self) -> None:
        self._started = self._sample()

    def stop(self, events: int) -> dict:
        web, database, machine = self._sample()
        web0, database0, machine0 = self._started

        def spent(now: dict[int, float], before: dict[int, float]) -> float:
            return sum(seconds - before.get(pid, 0.0) for pid, seconds in now.items())

        total = _elapsed(machine) - _elapsed(machine0)
        idle = (machine.idle - machine0.idle) + (machine.iowait - machine0.iowait)
        return {
            "web_us": round(spent(web, web0) / events * 1e6, 1),
            "database_us": round(spent(database, database0) / events * 1e6, 1) if self._postmaster else None,
            "machine_busy_cores": round((total - idle) / total * (os.cpu_count() or 1), 2) if total else None,
        }


def _elapsed(times) -> float:
    """All CPU time psutil.cpu_times() reports, once: on Linux a guest's time is already in user
    and nice."""
    return sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _post_worker(args) -> tuple[list[float], float]:
    port, secret, bodies, start_at = args
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    latencies = []
    time.sleep(max(0.0, start_at - time.time()))
    for body in bodies:
        started = time.perf_counter()
        connection.request("POST", "/api/v1/events", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"ingest answered {response.status}")
        latencies.append(time.perf_counter() - started)
    connection.close()
    return latencies, time.time()


# Clients are processes that take a few seconds to start and to receive their share of the
# bodies; they all begin sending at the same moment after that, so the phase's time is the
# server's work only.
CLIENT_START_DELAY = 5.0


def post_phase(port: int, secret: str, bodies: list[bytes], events_per_body: int, concurrency: int,
               meter: CpuMeter | None = None) -> dict:
    chunks = [bodies[i::concurrency] for i in range(concurrency)]
    start_at = time.time() + CLIENT_START_DELAY
    with multiprocessing.get_context("spawn").Pool(concurrency) as pool:
        pending = pool.map_async(_post_worker, [(port, secret, chunk, start_at) for chunk in chunks])
        time.sleep(max(0.0, start_at - time.time()))
        if meter:
            meter.start()
        results = pending.get()
        cpu = meter.stop(len(bodies) * events_per_body) if meter else None
    elapsed = max(finished for _, finished in results) - start_at
    latencies = sorted(latency for chunk, _ in results for latency in chunk)
    return {
        "events_per_request": events_per_body,
        "requests": len(latencies),
        "events_per_s": round(len(bodies) * events_per_body / elapsed),
        "p50_ms": round(statistics.quantiles(latencies, n=100)[49] * 1000, 1),
        "p99_ms": round(statistics.quantiles(latencies, n=100)[98] * 1000, 1),
        "client": "python",
        "concurrency": concurrency,
        "cpu_per_event": cpu,
    }


# Every wrk thread runs its own copy of this script with the same unseeded random numbers, so
# setup() numbers the threads and each one's ids carry its number: every event is new.
WRK_SCRIPT = """
local counter = 0
local threads = 0
local prefix = tostring(os.time())
setup = function(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
request = function()
  counter = counter + 1
  local id = "w" .. prefix .. "-" .. thread_number .. "-" .. counter
  local body = '{"id":"' .. id .. '","start_time":"' .. os.date("!%Y-%m-%dT%H:%M:%SZ") ..
    '","latency_ms":512,"provider":"openai","model":"gpt-4o-mini","input_tokens":900,"output_tokens":120,' ..
    '"user_id":"user_7","feature":"support-chat","input":"How do I export invoices?","output":"Use Export CSV."}'
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("WRK %d %d %f %f %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status))
end
"""


def single_phase(port: int, secret: str, seconds: int, concurrency: int, meter: CpuMeter | None = None) -> dict:
    if shutil.which("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(WRK_SCRIPT)
        if meter:
            meter.start()
        output = subprocess.run(
            ["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "-s", script.name, f"http://127.0.0.1:{port}/api/v1/events"],
            capture_output=True, text=True, env=dict(os.environ, BENCH_KEY=secret), check=True,
        ).stdout
        os.unlink(script.name)
        requests, duration_us, p50_us, p99_us, errors = next(
            line.split()[1:] for line in output.splitlines() if line.startswith("WRK ")
        )
        cpu = meter.stop(int(requests)) if meter else None
        if int(errors):
            raise RuntimeError(f"{errors} single-event requests failed:\n{output}")
        return {"events_per_request": 1, "requests": int(requests),
                "events_per_s": round(int(requests) / (int(duration_us) / 1e6)),
                "p50_ms": round(float(p50_us) / 1000, 1), "p99_ms": round(float(p99_us) / 1000, 1),
                "client": "wrk", "concurrency": concurrency, "cpu_per_event": cpu}
    now = datetime.now(UTC)
    run = f"single-{uuid.uuid4().hex[:8]}-"
    bodies = [json.dumps(event(now, i, run)).encode() for i in range(seconds * 400)]
    return post_phase(port, secret, bodies, 1, concurrency, meter)


def _stored(project) -> int:
    from observatory.calls.models import Call

    return Call.objects.filter(project=project).count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_web(port: int, workers: int, threads: int) -> subprocess.Popen:
    """The web role exactly as production starts it (`python -m observatory.deploy web`, granian
    with observatory.deploy.granian_conf), with the sizes under test; no worker is recycled
    mid-run, and only warnings are logged."""
    env = dict(os.environ, DEBUG="0", ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="0",
               INGEST_RATE_LIMIT_PER_SECOND="0", LOG_LEVEL="warning", WEB_BIND=f"127.0.0.1:{port}",
               WEB_WORKERS=str(workers), WEB_THREADS=str(threads), WEB_WORKERS_MAX_RSS="0")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # a fresh one, as in production
    process = subprocess.Popen(
        [sys.executable, "-m", "observatory.deploy", "web"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the web server did not start")


def web_server(workers: int, threads: int) -> dict:
    """What serves the benchmark (bench/soak.py reports the same)."""
    from importlib.metadata import version

    return {"server": "granian", "version": version("granian"), "interface": "wsgi",
            "launcher": "python -m observatory.deploy web", "workers": workers, "threads": threads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000, help="events per batched phase, and rows per ceiling")
    parser.add_argument("--rounds", type=int, default=3, help="ceiling and phases measured this many times")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, help="default: the web role's own (WEB_THREADS unset)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients for batched phases")
    parser.add_argument("--single-concurrency", type=int, default=32)
    parser.add_argument("--single-seconds", type=int, default=15)
    options = parser.parse_args()
    if options.threads is None:
        from observatory.deploy.sizing import default_web_threads

        options.threads = default_web_threads(options.workers)

    _django_setup()
    from django.core.management import call_command

    from observatory.tenancy.models import ApiKey
    from observatory.tenancy.services import bootstrap

    call_command("migrate", verbosity=0)
    result = bootstrap(email="bench@observatory.local", password=secrets.token_urlsafe(16),
                       project_slug="bench-ingest", key_name="bench")
    ApiKey.objects.filter(pk=result.issued.key.pk).update(rate_limit_per_second=0)
    secret = result.issued.secret

    now = datetime.now(UTC)
    report = {"machine": machine(), "started": now.isoformat(timespec="seconds"),
              "web_server": web_server(options.workers, options.threads), "rounds": options.rounds}

    from django.db import connections

    connections.close_all()
    port = free_port()
    server = start_web(port, options.workers, options.threads)
    rounds: dict[str, list[dict]] = {"batch_1000": [], "batch_100": [], "single": []}
    meter = CpuMeter(server.pid)
    try:
        for size in (1000, 100):  # warm up
            post_phase(port, secret, _bodies(now, size, max(2 * size, options.events // 20)), size, options.concurrency)
        for _ in range(options.rounds):
            for size in (1000, 100):
                ceiling = raw_copy_rate(result.project, [event(now, i, f"copy-{uuid.uuid4().hex[:8]}-")
                                                         for i in range(options.events)])
                connections.close_all()
                phase = post_phase(port, secret, _bodies(now, size, options.events), size, options.concurrency, meter)
                phase["raw_copy_rows_per_s"] = round(ceiling)
                phase["share_of_raw_copy"] = round(phase["events_per_s"] / ceiling, 2)
                rounds[f"batch_{size}"].append(phase)
            stored_before = _stored(result.project)
            single = single_phase(port, secret, options.single_seconds, options.single_concurrency, meter)
            # Every single event is new: each request must have stored exactly one call.
            single["stored"] = _stored(result.project) - stored_before
            connections.close_all()
            rounds["single"].append(single)
    finally:
        server.terminate()
        server.wait(30)
    for name, phases in rounds.items():
        report[name] = {"events_per_s": round(statistics.median(p["events_per_s"] for p in phases))}
        if name != "single":
            report[name]["share_of_raw_copy"] = round(statistics.median(p["share_of_raw_copy"] for p in phases), 2)
        report[name]["rounds"] = phases
    print(json.dumps(report, indent=2))


def _bodies(now: datetime, size: int, events: int) -> list[bytes]:
    """Request bodies of `size` new events each, `events` in all."""
    run = f"batch{size}-{uuid.uuid4().hex[:8]}-"
    return [json.dumps({"events": [event(now, i, run) for i in range(start, start + size)]}).encode()
            for start in range(0, events, size)]


if __name__ == "__main__":
    main()
