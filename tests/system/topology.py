"""The production topology without Docker: the processes docker-compose.yml runs, started with
the same launcher (`python -m observatory.deploy web|worker|beat`), talking over real sockets.

- web: granian with several workers on a free loopback port, with the real settings;
- worker and beat: Celery on the broker from CELERY_BROKER_URL (Redis by default), on a queue
  and worker name of their own, so test runs sharing a broker never take each other's jobs;
- PostgreSQL: the pytest-django test database, reached under an application_name of its own
  so a test can drop exactly these processes' connections;
- SMTP: an aiosmtpd sink on a free port, which EMAIL_HOST/EMAIL_PORT point at.

Every process runs in its own process group, and `close()` ends every group it started.

Extension points, for what later issues add (search for EXTENSION in this folder):
- ingest (POST /api/v1/events): `Topology.request("POST", "/api/v1/events", body=..., headers=
  {"Authorization": f"Bearer {secret}"})` with a key made by `bootstrap` in the test database;
- rollups: `wait_until(...)` on the rollup tables, and on /metrics' observatory_rollup_lag_seconds;
- budget emails: `Topology.smtp.wait_for(lambda m: ...)` once a budget threshold is crossed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
# Upper bounds for things that normally take a second or two on a busy 2-core machine; they
# make a hung process fail the test instead of hanging it, and are not assertions about speed.
START_TIMEOUT = 120
STOP_TIMEOUT = 20
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
METRICS_TOKEN = "systest-metrics-token-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, detail: Callable[[], str] = str) -> Any:
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f}s\n{detail()}")
        time.sleep(0.2)


def broker_problem(url: str) -> str | None:
    """Why the broker at `url` cannot be used, or None when it answers."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2, transport_options={"socket_connect_timeout": 2, "max_retries": 0}) as c:
            c.ensure_connection(max_retries=1, timeout=2)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def database_url(settings_dict: Mapping[str, Any], *, application_name: str) -> str:
    """A DATABASE_URL for the database Django's `settings_dict` describes (the test database)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@"
    host = quote(settings_dict.get("HOST") or "", safe="")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{settings_dict['NAME']}?application_name={application_name}"


@dataclass
class Response:
    status: int
    # Case-insensitive, as HTTP header names are: granian sends them in lower case.
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class SmtpSink:
    """An SMTP server on a free loopback port that keeps every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Message] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"

    def wait_for(self, predicate: Callable[[Message], bool], *, what: str, timeout: float = 60) -> Message:
        return wait_until(
            lambda: next((m for m in self.messages if predicate(m)), None),
            timeout=timeout,
            what=what,
            detail=lambda: f"received: {[m['Subject'] for m in self.messages]}",
        )

    def stop(self) -> None:
        self._controller.stop()


@dataclass
class Process:
    name: str
    role: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def json_lines(self) -> list[dict]:
        lines = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    pass
        return lines

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass


@dataclass
class Topology:
    workdir: Path
    database: Mapping[str, Any]
    broker_url: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    processes: dict[str, Process] = field(default_factory=dict)
    smtp: SmtpSink | None = None
    web_port: int = 0
    worker_metrics_port: int = 0
    # Settings every process of this topology gets on top of the defaults below (a faster
    # rollup interval, a mail port behind a proxy a test can cut, ...).
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def queue(self) -> str:
        return f"systest-{self.run_id}"

    @property
    def application_name(self) -> str:
        return f"observatory-systest-{self.run_id}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def environment(self, **overrides: str) -> dict[str, str]:
        """What every process gets: production settings (DEBUG off, JSON logs) on loopback."""
        env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "PROMETHEUS_MULTIPROC_DIR", "LOG_FORMAT")}
        env.update(
            DJANGO_SETTINGS_MODULE="observatory.settings",
            PYTHONUNBUFFERED="1",
            DATABASE_URL=database_url(self.database, application_name=self.application_name),
            # Persistent connections, as in production (the test run itself uses none).
            DATABASE_CONN_MAX_AGE="60",
            CELERY_BROKER_URL=self.broker_url,
            CELERY_TASK_DEFAULT_QUEUE=self.queue,
            CELERY_WORKER_NAME=f"{self.queue}@%h",
            CELERY_WORKER_CONCURRENCY="1",
            # A job taken by a worker that is then killed comes back after this many seconds.
            CELERY_BROKER_VISIBILITY_TIMEOUT="10",
            CELERY_TASK_SOFT_TIME_LIMIT="5",
            CELERY_TASK_TIME_LIMIT="8",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SITE_URL=f"http://127.0.0.1:{self.web_port}",
            # Plain HTTP on loopback: TLS is the proxy's job in production.
            SECURE_SSL_REDIRECT="0",
            METRICS_TOKEN=METRICS_TOKEN,
            WORKER_METRICS_BIND=f"127.0.0.1:{self.worker_metrics_port}",
            WEB_BIND=f"127.0.0.1:{self.web_port}",
            WEB_WORKERS="3",
            WEB_THREADS="2",
            BEAT_SCHEDULE_FILE=str(self.workdir / "beat" / "schedule"),
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(self.smtp.port if self.smtp else 25),
            DEFAULT_FROM_EMAIL="Observatory <observatory@systest.invalid>",
            STATIC_ROOT=str(self.workdir / "static"),
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    # --- processes ----------------------------------------------------------------------

    def start(self) -> Topology:
        self.web_port, self.worker_metrics_port = free_port(), free_port()
        (self.workdir / "beat").mkdir(parents=True, exist_ok=True)
        if self.smtp is None:  # a test may bring its own sink, e.g. to put a proxy in front of it
            self.smtp = SmtpSink()
        # As the image does at build time: production settings serve collected static files.
        collected = self.manage("collectstatic", "--noinput", "--verbosity", "0")
        assert collected.returncode == 0, collected.stderr
        self.spawn("web", "web")
        self.spawn("worker", "worker")
        self.spawn("beat", "beat")
        self.wait_for_web(self.base_url, self.processes["web"])
        # A fresh worker may well be ready before the web answers: count from its start.
        self.wait_for_worker(ready_before=0)
        from observatory.deploy.beat import heartbeat_file

        self.wait_for(self.processes["beat"], heartbeat_file(self.environment()).exists, "beat's first heartbeat")
        return self

    def spawn(self, name: str, role: str, **env: str) -> Process:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "observatory.deploy", role],
                cwd=ROOT,
                env=self.environment(PROMETHEUS_MULTIPROC_DIR=str(self.workdir / f"metrics-{name}"), **env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = Process(name, role, popen, log)
        return self.processes[name]

    def wait_for(self, process: Process, predicate: Callable[[], Any], what: str) -> Any:
        def check() -> Any:
            if not process.alive():
                raise AssertionError(
                    f"{process.name} exited with {process.popen.returncode}:\n{process.output()[-4000:]}"
                )
            return predicate()

        return wait_until(check, timeout=START_TIMEOUT, what=what, detail=lambda: process.output()[-4000:])

    def wait_for_web(self, base_url: str, process: Process) -> None:
        def answers() -> bool:
            try:
                return self.request("GET", "/healthz", base_url=base_url).status == 200
            except OSError:
                return False

        self.wait_for(process, answers, f"{process.name} answering /healthz")

    @contextmanager
    def extra_web(self, name: str, **env: str) -> Iterator[tuple[int, str]]:
        """Another web process with settings of its own, on a free port; yields (port, base
        URL) once it answers and stops it afterwards."""
        port = free_port()
        process = self.spawn(name, "web", WEB_BIND=f"127.0.0.1:{port}", **env)
        base_url = f"http://127.0.0.1:{port}"
        self.wait_for_web(base_url, process)
        try:
            yield port, base_url
        finally:
            self.stop(name)

    def wait_for_worker(self, *, ready_before: int | None = None) -> None:
        """Wait for the worker's next "ready." line: the one after `ready_before` of them (by
        default, as many as it has printed so far, for a worker being restarted)."""
        worker = self.processes["worker"]
        if ready_before is None:
            ready_before = worker.output().count(" ready.")
        self.wait_for(worker, lambda: worker.output().count(" ready.") > ready_before, "the Celery worker's 'ready.'")

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group: no shutdown handler runs, nothing is acknowledged."""
        process = self.processes[name]
        process.signal_group(signal.SIGKILL)
        process.popen.wait(STOP_TIMEOUT)

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.signal_group(signal.SIGTERM)
        try:
            process.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left of the group (pool children, a stuck master) goes now.
        process.signal_group(signal.SIGKILL)
        if process.popen.poll() is None:
            process.popen.wait(STOP_TIMEOUT)

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        if self.smtp:
            self.smtp.stop()
        self._forget_queue()

    def _forget_queue(self) -> None:
        """Remove what this run left in a shared Redis: its queue and kombu's binding keys,
        all named after the run's unique queue name."""
        if not self.broker_url.startswith(("redis://", "rediss://")):
            return
        import redis

        client = redis.Redis.from_url(self.broker_url, socket_connect_timeout=2)
        try:
            for key in client.scan_iter(match=f"*{self.queue}*"):
                client.delete(key)
        except redis.RedisError:
            pass  # a broker gone by now leaves nothing to clean
        finally:
            client.close()

    # --- talking to it ------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        base_url: str | None = None,
    ) -> Response:
        request = urllib.request.Request(
            (base_url or self.base_url) + path, data=body, method=method, headers=dict(headers or {})
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Response(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.headers, error.read())

    def metrics(self, *, url: str | None = None) -> str:
        response = self.request("GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, base_url=url)
        assert response.status == 200, response
        return response.body.decode()

    def enqueue(self, task_name: str, *, request_id: str | None = None) -> str:
        """Send a task through the broker to this topology's queue, as the web app would."""
        from kombu import Connection

        from observatory.celery import app

        headers = {"request_id": request_id} if request_id else {}
        with Connection(self.broker_url) as connection:
            result = app.send_task(task_name, queue=self.queue, connection=connection, headers=headers)
        return result.id

    def healthcheck(self, role: str) -> subprocess.CompletedProcess:
        """docker-compose.yml's healthcheck command for `role`, against these processes."""
        return subprocess.run(
            [sys.executable, "-m", "observatory.deploy", "healthcheck", role],
            cwd=ROOT,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )
