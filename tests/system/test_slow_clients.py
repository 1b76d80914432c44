"""Slow clients against the production web server (granian with the real settings): a request
whose headers or body trickle in must not hold up anyone else's, and is still answered
correctly once it is complete. (A buffering proxy in front spares the server slow clients
altogether; this is what happens when one gets through.)

What granian does, found by experiment and checked below: it reads a request's headers
itself, holding no thread, and drops a connection whose headers are not complete within
WEB_HEADER_READ_TIMEOUT. Then the request gets one of the worker's WEB_THREADS threads, which
reads the body as it arrives (granian does not buffer it first) with no timeout at all: a
stalled body holds its thread until the body completes or the client goes away."""

from __future__ import annotations

import json
import socket
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from observatory.calls.models import Call
from observatory.tenancy.services import bootstrap
from tests.system.topology import wait_until

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

HEADER_READ_TIMEOUT = 2  # seconds, for the one-thread server


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
    with topology.extra_web("web-one-thread", WEB_WORKERS="1", WEB_THREADS="1",
                            WEB_HEADER_READ_TIMEOUT=str(HEADER_READ_TIMEOUT)) as (port, base_url):
        yield port, base_url


def test_a_client_that_stalls_mid_headers_holds_no_thread_and_is_dropped(topology, one_thread_web):
    port, base_url = one_thread_web
    stalled = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        stalled.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")  # then nothing more
        started = time.monotonic()
        # Headers are read by granian itself: the only thread is free for everyone else.
        assert topology.request("GET", "/healthz", base_url=base_url).status == 200
        assert time.monotonic() - started < HEADER_READ_TIMEOUT
        # After WEB_HEADER_READ_TIMEOUT the connection is closed, without an answer.
        assert stalled.recv(4096) == b""
        assert HEADER_READ_TIMEOUT - 0.5 < time.monotonic() - started < HEADER_READ_TIMEOUT + 10
    finally:
        stalled.close()


def stalled_mid_body(port: int, secret: str, body: bytes, request_id: str) -> tuple[socket.socket, bytes]:
    """A connection that has sent its headers and the first 40 bytes of `body`, and the rest."""
    whole = request_bytes(secret, body).replace(b"\r\n\r\n", f"\r\nX-Request-Id: {request_id}\r\n\r\n".encode(), 1)
    cut = whole.index(b"\r\n\r\n") + 4 + 40
    stalled = socket.create_connection(("127.0.0.1", port), timeout=60)
    stalled.sendall(whole[:cut])
    # granian parses the headers and hands the request to a thread within milliseconds; a
    # request sent before that could take the thread first.
    time.sleep(0.5)
    return stalled, whole[cut:]


def healthz_in_background(topology, base_url: str) -> Future:
    return ThreadPoolExecutor(1).submit(lambda: topology.request("GET", "/healthz", base_url=base_url).status)


def test_a_client_that_stalls_mid_body_holds_its_thread_and_is_answered_once_complete(topology, one_thread_web):
    """granian hands a request to a thread once its headers are in; the thread then reads the
    body as it arrives, and no timeout ends that read (none of gunicorn's read timeout, and
    WEB_HEADER_READ_TIMEOUT is over by then). Stalled for longer than that timeout, the
    request still holds the only thread, and is answered correctly when its body is complete."""
    port, base_url = one_thread_web
    slug = "stall-" + uuid.uuid4().hex[:8]
    secret = bootstrap(email=f"{slug}@example.com", password="slow-client-password", project_slug=slug).issued.secret
    stalled, rest = stalled_mid_body(port, secret, events_body(f"{slug}-stalled", 5), f"{slug}-stalled")
    try:
        waiting = healthz_in_background(topology, base_url)
        time.sleep(HEADER_READ_TIMEOUT + 2)
        assert not waiting.done()  # the only thread is still reading the stalled body
        assert nothing_answered_yet(stalled)
        stalled.sendall(rest)
        assert read_status(stalled) == 200
        assert waiting.result(timeout=30) == 200
    finally:
        stalled.close()
    assert Call.objects.filter(project__slug=slug).count() == 5


def test_a_client_that_goes_away_mid_body_frees_its_thread_and_stores_nothing(topology, one_thread_web):
    """What ends a stalled body is its client closing the connection: the thread then gets the
    incomplete body (no error), which ingest refuses as malformed, to no one."""
    port, base_url = one_thread_web
    slug = "gone-" + uuid.uuid4().hex[:8]
    secret = bootstrap(email=f"{slug}@example.com", password="slow-client-password", project_slug=slug).issued.secret
    stalled, _ = stalled_mid_body(port, secret, events_body(f"{slug}-gone", 5), f"{slug}-gone")
    waiting = healthz_in_background(topology, base_url)
    time.sleep(1)
    assert not waiting.done()
    stalled.close()
    assert waiting.result(timeout=30) == 200
    assert not Call.objects.filter(project__slug=slug).exists()
    web = topology.processes["web-one-thread"]
    logged = wait_until(lambda: [line for line in web.json_lines() if line.get("request_id") == f"{slug}-gone"],
                        timeout=10, what="the abandoned request's log line", detail=web.output)
    assert logged[0]["status"] == 400
