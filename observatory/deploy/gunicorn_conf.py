"""gunicorn's settings (`gunicorn -c python:observatory.deploy.gunicorn_conf`), every one
overridable from the environment; see the configuration table in README.md."""

from __future__ import annotations

import os
from pathlib import Path

from observatory.deploy.sizing import available_cpus, default_web_workers
from observatory.env import env_host_port, env_int
from observatory.logs import log_settings_from_env, logging_config

_bind = env_host_port("GUNICORN_BIND") or ("0.0.0.0", 8000)
bind = [f"[{_bind[0]}]:{_bind[1]}" if ":" in _bind[0] else f"{_bind[0]}:{_bind[1]}"]
workers = env_int("GUNICORN_WORKERS", default_web_workers(available_cpus()), minimum=1, maximum=256)
# Threads let a worker serve other requests while one waits on PostgreSQL; each thread may
# hold a database connection, so workers x threads is this container's connection budget.
worker_class = "gthread"
threads = env_int("GUNICORN_THREADS", 4, minimum=1, maximum=64)

# A worker that stops answering its master's heartbeat this long is replaced: a hung process.
# (With threads a slow request does not stop the heartbeat; the proxy's timeout bounds those.)
timeout = env_int("GUNICORN_TIMEOUT", 30, minimum=5, maximum=600)
# On SIGTERM (a deploy, `docker compose stop`) requests in flight get this long to finish;
# docker-compose.yml's stop_grace_period is longer, so nothing is cut off mid-write.
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30, minimum=1, maximum=600)
keepalive = env_int("GUNICORN_KEEPALIVE", 5, minimum=1, maximum=300)
# Recycle workers now and then so a slow leak never becomes an outage; jitter keeps them
# from restarting together.
max_requests = env_int("GUNICORN_MAX_REQUESTS", 5000, minimum=0)
max_requests_jitter = max_requests // 10

# A request that sends nothing more of its body for this long is cut off. Each request holds
# one of a worker's threads while its body arrives; without a limit a client that stalls
# mid-body (or sends a byte now and then) holds it for good. A buffering proxy in front spares
# gunicorn slow clients altogether; this bounds what one that gets through can cost.
_read_timeout = env_int("GUNICORN_READ_TIMEOUT", 30, minimum=1, maximum=600)


def pre_request(worker, req) -> None:
    client = getattr(req.unreader, "sock", None)  # HTTP/1 requests read from their socket
    if client is not None:
        client.settimeout(_read_timeout)


# Request line and headers: gunicorn's maxima (8190 bytes, 100 fields). Bodies are limited by
# INGEST_MAX_BODY_BYTES in Django (DATA_UPLOAD_MAX_MEMORY_SIZE follows it) and by the proxy.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# gunicorn's heartbeat file on a disk-backed /tmp can stall workers in containers.
if Path("/dev/shm").is_dir():
    worker_tmp_dir = "/dev/shm"

# Every request is logged by observatory.request_id with its id (gunicorn's access log would
# repeat it without one; see observatory.logs).
errorlog = "-"
# gunicorn's runtime control socket lives at one path per user: two instances on a host would
# fight over it, and nothing here uses it.
control_socket_disable = True
_log_format, _log_level = log_settings_from_env()
logconfig_dict = logging_config(log_format=_log_format, level=_log_level)


def on_starting(server) -> None:
    from observatory.health.exposition import multiprocess_dir_reset

    multiprocess_dir_reset()


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
