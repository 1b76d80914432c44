"""`python -m observatory.deploy ROLE`: what each production process runs.

    web | worker | beat | migrate        replace this process with that role's server
    healthcheck web | worker | beat      exit 0 when that role, running here, is healthy

docker-compose.yml runs these, and so does the multi-process system test, so that what is
tested is what is deployed. Bad configuration stops with one sentence (exit status 2).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from observatory.deploy.beat import HEARTBEAT_STALE_SECONDS, MAX_INTERVAL_SECONDS, heartbeat_file, schedule_file
from observatory.env import ConfigError, env_int, env_list, env_str

ROLES = ("web", "worker", "beat", "migrate")
ROOT = Path(__file__).resolve().parents[2]


def _exec(argv: list[str]) -> None:
    sys.stdout.flush()
    os.execvp(argv[0], argv)


def _multiprocess_dir(role: str) -> None:
    # Processes of one role share a directory; a fresh one per start means two instances on
    # one host (or a web and a worker) never add up each other's counters.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"observatory-{role}-metrics-")


def worker_name() -> str:
    return (env_str("CELERY_WORKER_NAME") or "celery@%h").replace("%h", socket.gethostname())


def run(role: str) -> None:
    python = sys.executable
    os.chdir(ROOT)  # granian and celery import `observatory` from the working directory
    if role == "migrate":
        _exec([python, "manage.py", "migrate", "--noinput"])
    elif role == "web":
        from observatory.deploy.granian_conf import granian_argv, log_config_file, web_settings
        from observatory.health.exposition import multiprocess_dir_reset

        settings = web_settings()  # a bad WEB_* value stops here, in one sentence
        _multiprocess_dir(role)
        # granian has no hook before it forks its workers: this process becomes its main one.
        multiprocess_dir_reset()
        _exec([python, "-m", "granian", *granian_argv(settings, log_config=log_config_file(settings))])
    elif role == "worker":
        from observatory.deploy.sizing import available_cpus

        _multiprocess_dir(role)
        argv = [python, "-m", "celery", "-A", "observatory", "worker", "--hostname", worker_name()]
        argv += ["--concurrency", str(env_int("CELERY_WORKER_CONCURRENCY", available_cpus(), minimum=1, maximum=256))]
        queues = env_list("CELERY_WORKER_QUEUES", [])
        if queues:
            argv += ["--queues", ",".join(queues)]
        _exec(argv)
    elif role == "beat":
        _exec([
            python, "-m", "celery", "-A", "observatory", "beat",
            "--scheduler", "observatory.deploy.beat:HeartbeatScheduler",
            "--schedule", str(schedule_file()),
            "--max-interval", str(MAX_INTERVAL_SECONDS),
        ])  # fmt: skip


def healthcheck(role: str) -> str | None:
    """None when healthy, else why not."""
    if role == "web":
        from observatory.env import env_host_port

        port = (env_host_port("WEB_BIND") or ("", 8000))[1]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                return None if response.status == 200 else f"/healthz answered {response.status}"
        except OSError as error:
            return f"/healthz did not answer: {error}"
    if role == "worker":
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
        django.setup()
        from observatory.celery import app

        name = worker_name()
        try:
            replies = app.control.ping(destination=[name], timeout=5)
        except Exception as error:  # the broker itself is unreachable
            return f"cannot ping {name}: {error}"
        return None if any(name in reply for reply in replies) else f"{name} did not answer a ping through the broker"
    if role == "beat":
        try:
            age = time.time() - heartbeat_file().stat().st_mtime
        except FileNotFoundError:
            return f"no heartbeat at {heartbeat_file()} yet"
        return None if age < HEARTBEAT_STALE_SECONDS else f"last heartbeat {age:.0f}s ago"
    raise ValueError(role)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m observatory.deploy")
    parser.add_argument("role", choices=(*ROLES, "healthcheck"))
    parser.add_argument("target", nargs="?", choices=("web", "worker", "beat"))
    options = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
    try:
        if options.role != "healthcheck":
            run(options.role)
            return 0  # not reached: run() replaces this process
        if options.target is None:
            parser.error("healthcheck needs a role: web, worker or beat")
        problem = healthcheck(options.target)
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
