"""Helpers for budget, alert and notification tests: spend at chosen times, jobs run inline."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from observatory.calls.services import calls_write
from tests.records import record


@pytest.fixture
def inline_jobs():
    """Queued jobs run in the calling thread, as a worker would run them."""
    from observatory.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


def spend(project, cost: str, at: datetime, **fields) -> None:
    """One priced call of `cost` USD that started at `at`."""
    calls_write(project=project, records=[record(cost=Decimal(cost), start_time=at, **fields)])


def threads_run(target: Callable[[int], object], count: int) -> list[object]:
    """Run `target(i)` in `count` threads that start together, each on its own database
    connection (so each in its own transactions); return their results in order."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


class WebhookReceiver:
    """A local HTTP endpoint answering with the next of `statuses` (the last one repeats) and
    keeping every body it received."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                receiver.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/T000/B000/secret"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook_receiver(settings):
    # The receivers listen on loopback, which webhooks may only reach when allowed.
    settings.ALERT_WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    receivers: list[WebhookReceiver] = []

    def start(statuses: list[int]) -> WebhookReceiver:
        receivers.append(WebhookReceiver(statuses))
        return receivers[-1]

    yield start
    for receiver in receivers:
        receiver.close()
