"""The web role's server: granian (WSGI interface) and its settings, every one overridable
from the environment (WEB_*; see the configuration table in README.md) and checked here,
before granian starts, so that a bad value stops the role with one sentence.

Why granian rather than gunicorn: on a 2-core machine gunicorn+Django answering a constant
/healthz topped out at ~7,000 requests/s where granian serves ~17,000, and a single-event
ingest request costs ~0.3 ms less server CPU; ingest has to take 2,000 such requests/s.

gunicorn settings with no granian equivalent, dropped:
- the worker heartbeat timeout (a worker that hangs is not replaced; one that exits is, by
  --respawn-failed-workers); requests that take too long are the proxy's timeout to bound;
- the keep-alive idle timeout: granian closes an idle keep-alive connection when the header
  read timeout runs out (the next request's headers did not arrive), so WEB_HEADER_READ_TIMEOUT
  bounds both;
- a read timeout for the request body: granian has none (see tests/system/test_slow_clients.py);
- limits on the request line and each header: hyper's own apply instead (431 for more than 100
  headers, or for headers larger than the read buffer: 500 KB passed, 2 MB did not);
- its access log, heartbeat directory and control socket.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from observatory.deploy.sizing import available_cpus, default_web_threads, default_web_workers
from observatory.env import ConfigError, env_host_port, env_int
from observatory.logs import log_settings_from_env, logging_config

APPLICATION = "observatory.wsgi:web_application"  # a factory: see --factory below
MIN_WORKERS_LIFETIME = 60  # granian refuses less


@dataclass(frozen=True)
class WebSettings:
    host: str
    port: int
    workers: int
    threads: int
    backlog: int
    graceful_timeout: int
    header_read_timeout: int
    workers_max_rss: int
    workers_lifetime: int
    log_format: str
    log_level: str


def web_settings() -> WebSettings:
    """The web server's settings from the environment, or ConfigError naming the bad one."""
    host, port = env_host_port("WEB_BIND") or ("0.0.0.0", 8000)
    lifetime = env_int("WEB_WORKERS_LIFETIME", 0, minimum=0, maximum=7 * 24 * 3600)
    if 0 < lifetime < MIN_WORKERS_LIFETIME:
        raise ConfigError(f"WEB_WORKERS_LIFETIME={lifetime} is too small: 0 (never) or at least 60 seconds.")
    log_format, log_level = log_settings_from_env()
    workers = env_int("WEB_WORKERS", default_web_workers(available_cpus()), minimum=1, maximum=256)
    return WebSettings(
        host=host,
        port=port,
        workers=workers,
        # Blocking threads run the Django code: a thread waiting on PostgreSQL leaves the CPU to
        # the others, and concurrent small ingest requests in one process share one insert (group
        # commit), so more threads per process help. Each may hold a database connection:
        # workers x threads is this container's connection budget, which the default keeps
        # within 64. (granian warns at start when threads outnumber 2 x CPUs + 1; intended.)
        threads=env_int("WEB_THREADS", default_web_threads(workers), minimum=1, maximum=64),
        # Connections the kernel queues before granian accepts them (granian's own minimum is 128).
        backlog=env_int("WEB_BACKLOG", 1024, minimum=128, maximum=65535),
        # On SIGTERM (a deploy, `docker compose stop`) requests in flight get this long to finish,
        # then the worker is killed; docker-compose.yml's stop_grace_period is longer.
        graceful_timeout=env_int("WEB_GRACEFUL_TIMEOUT", 30, minimum=1, maximum=600),
        # A request whose headers have not all arrived after this long is dropped (no answer);
        # the same bound closes idle keep-alive connections. granian's maximum is 60 s.
        header_read_timeout=env_int("WEB_HEADER_READ_TIMEOUT", 30, minimum=1, maximum=60),
        # Recycle a worker whose memory grows past this (MiB), so a slow leak never becomes an
        # outage; a worker settled near 110 MiB in the soak (bench/README.md). 0 never.
        workers_max_rss=env_int("WEB_WORKERS_MAX_RSS", 512, minimum=0, maximum=1024 * 1024),
        workers_lifetime=lifetime,
        log_format=log_format,
        log_level=log_level,
    )


def log_config_file(settings: WebSettings) -> Path:
    """observatory.logs' dictConfig as the JSON file granian's --log-config reads: granian's own
    lines go through the same handler and format as Django's and Celery's."""
    descriptor, path = tempfile.mkstemp(prefix="observatory-web-logging-", suffix=".json")
    with os.fdopen(descriptor, "w") as out:
        json.dump(logging_config(log_format=settings.log_format, level=settings.log_level), out)
    return Path(path)


def granian_argv(settings: WebSettings, *, log_config: Path) -> list[str]:
    """granian's command-line options for these settings (after `python -m granian`)."""
    argv = [
        "--interface", "wsgi",
        # Behind a proxy that speaks HTTP/1.1; the header read timeout is HTTP/1's.
        "--http", "1",
        "--no-ws",
        "--host", settings.host,
        "--port", str(settings.port),
        "--workers", str(settings.workers),
        "--blocking-threads", str(settings.threads),
        "--backlog", str(settings.backlog),
        "--workers-kill-timeout", str(settings.graceful_timeout),
        "--http1-header-read-timeout", str(settings.header_read_timeout * 1000),
        # A worker that dies (a segfault, the OOM killer) is replaced rather than taking the
        # whole server down with it.
        "--respawn-failed-workers",
        "--log-config", str(log_config),
        "--log-level", settings.log_level.lower(),
        # observatory.request_id logs every request with its id; granian's access log would
        # repeat it without one.
        "--no-access-log",
        "--factory",
    ]  # fmt: skip
    if settings.workers_max_rss:
        argv += ["--workers-max-rss", str(settings.workers_max_rss)]
    if settings.workers_lifetime:
        argv += ["--workers-lifetime", str(settings.workers_lifetime)]
    return [*argv, APPLICATION]
