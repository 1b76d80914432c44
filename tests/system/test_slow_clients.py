"""Slow clients against the production web server (gunicorn with the real settings): a request
whose headers or body trickle in must not hold up anyone else's, and is still answered
correctly once it is complete. (A buffering proxy in front spares gunicorn slow clients
altogether; this is what happens when one gets through.)"""

from __future__ import annotations

import json
import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from observatory.calls.models import Call
from observatory.tenancy.services import bootstrap

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def events_body(prefix: str, count: int) -> bytes:
    start = datetime.now(UTC) - timedelta(minutes=1)
    return json.dumps({"events": [
        {"id": f"{prefix}-{index}", "start_time": (start + timedelta(milliseconds=index)).isoformat(),
         "model": "gpt-4o-mini", "input_tokens": 10, "output_tokens": 1}
        for index in range(count)
    ]}).encode()


def request_bytes(secret: str, body: bytes) -> bytes:
    return (f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {secret}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode() + body


def nothing_answered_yet(connection: socket.socket) -> bool:
    """True while the server has neither answered nor closed the connection."""
    connection.setblocking(False)
    try:
        connection.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        connection.setblocking(True)
    return False


def read_status(connection: socket.socket) -> int:
    connection.settimeout(60)
    answer = b""
    while b"\r\n" not in answer:
        chunk = connection.recv(4096)
        if not chunk:
            break
        answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("trickled", ["body", "headers"])
def test_a_trickling_request_holds_up_no_one_and_is_answered_once_complete(topology, trickled):
    slug = "slow-" + uuid.uuid4().hex[:8]
    secret = bootstrap(email=f"{slug}@example.com", password="slow-client-password", project_slug=slug).issued.secret
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    whole = request_bytes(secret, events_body(f"{slug}-slow", 5))
    cut = whole.index(b"\r\n\r\n") + 4 + 40 if trickled == "body" else 30  # mid-body, or mid-request-line
    slow = socket.create_connection(("127.0.0.1", topology.web_port), timeout=60)
    try:
        slow.sendall(whole[:cut])
        sent = cut
        for round_ in range(20):
            # Everyone else is served while the slow request is still arriving, a few bytes at a time.
            assert topology.request("GET", "/healthz").status == 200
            fast = topology.request("POST", "/api/v1/events", body=events_body(f"{slug}-fast{round_}", 3),
                                    headers=headers)
            assert fast.status == 200, fast.body
            step = whole[sent:sent + 3]
            if sent + len(step) < len(whole):  # keep the request unfinished until the end
                slow.sendall(step)
                sent += len(step)
            assert nothing_answered_yet(slow)
        slow.sendall(whole[sent:])
        assert read_status(slow) == 200
    finally:
        slow.close()
    stored = Call.objects.filter(project__slug=slug)
    assert stored.filter(span_id__startswith=f"{slug}-fast").count() == 60
    assert stored.filter(span_id__startswith=f"{slug}-slow").count() == 5


@pytest.fixture
def one_thread_web(topology):
    """A web server with a single thread in a single worker: one stuck request would stop it."""
    with topology.extra_web("web-one-thread", GUNICORN_WORKERS="1", GUNICORN_THREADS="1",
                            GUNICORN_READ_TIMEOUT="2") as (port, base_url):
        yield port, base_url


def test_a_client_that_stalls_mid_body_is_cut_off_and_frees_its_thread(topology, one_thread_web):
    port, base_url = one_thread_web
    slug = "stall-" + uuid.uuid4().hex[:8]
    secret = bootstrap(email=f"{slug}@example.com", password="slow-client-password", project_slug=slug).issued.secret
    whole = request_bytes(secret, events_body(f"{slug}-stalled", 5))
    stalled = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        stalled.sendall(whole[: whole.index(b"\r\n\r\n") + 4 + 40])  # then nothing more
        # The only thread is reading the stalled body; this request is served once it gives up
        # (GUNICORN_READ_TIMEOUT), well within the client's own 30-second timeout.
        assert topology.request("GET", "/healthz", base_url=base_url).status == 200
        assert read_status(stalled) == 408
    finally:
        stalled.close()
    assert not Call.objects.filter(project__slug=slug).exists()
