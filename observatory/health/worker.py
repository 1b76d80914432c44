"""The Celery worker's side of the metrics: task outcomes, and an endpoint that serves them.

Alert emails and other jobs run in the worker's pool processes, so what they count never
reaches the web's /metrics. The worker's main process serves its own pool's counters on
WORKER_METRICS_BIND (e.g. 0.0.0.0:9808), under the same access rules as /metrics.
"""

from __future__ import annotations

import logging
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery import signals

logger = logging.getLogger(__name__)


def metrics_wsgi_app(environ: dict, start_response) -> list[bytes]:
    from prometheus_client import CONTENT_TYPE_LATEST

    from observatory.health.exposition import metrics_access, metrics_text

    status = metrics_access(authorization=environ.get("HTTP_AUTHORIZATION"), remote_addr=environ.get("REMOTE_ADDR"))
    if environ.get("PATH_INFO") != "/metrics":
        status = 404
    if status != 200:
        start_response(f"{status} {'Not Found' if status == 404 else 'Forbidden'}", [("Content-Length", "0")])
        return [b""]
    body = metrics_text(scrape_time=False)
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
    return [body]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per scrape every 15 s says nothing


def serve_worker_metrics(bind: tuple[str, int]) -> WSGIServer:
    server = make_server(bind[0], bind[1], metrics_wsgi_app, _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("worker metrics on http://%s:%s/metrics", *server.server_address[:2])
    return server


def _clear_multiprocess_dir(**kwargs: object) -> None:
    from observatory.health.exposition import multiprocess_dir_reset

    multiprocess_dir_reset()


def _start_metrics_server(**kwargs: object) -> None:
    from django.conf import settings

    if settings.WORKER_METRICS_BIND:
        serve_worker_metrics(settings.WORKER_METRICS_BIND)


def _count(outcome: str):
    def receiver(sender: object = None, **kwargs: object) -> None:
        from observatory.telemetry import CELERY_TASKS

        CELERY_TASKS.labels(task=getattr(sender, "name", str(sender)), outcome=outcome).inc()

    return receiver


def connect_worker_signals() -> None:
    signals.worker_init.connect(_clear_multiprocess_dir, weak=False)
    signals.worker_ready.connect(_start_metrics_server, weak=False)
    for signal, outcome in (
        (signals.task_success, "success"),
        (signals.task_failure, "failure"),
        (signals.task_retry, "retry"),
    ):
        signal.connect(_count(outcome), weak=False)
