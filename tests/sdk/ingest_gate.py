"""An HTTP hop between the Python client and the live Observatory, standing in for the
load balancer or proxy a real deployment has: it can be down, answer with a failure,
or lose the reply to a request the server did store. It keeps every request it saw."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FORWARDED_HEADERS = ("Authorization", "Content-Type", "Content-Encoding", "User-Agent")
RELAYED_HEADERS = ("Content-Type", "Retry-After")


@dataclass(frozen=True)
class SeenRequest:
    headers: dict[str, str]
    body: bytes

    def events(self) -> list[dict]:
        raw = gzip.decompress(self.body) if self.headers.get("Content-Encoding") == "gzip" else self.body
        return json.loads(raw)["events"]


@dataclass(frozen=True)
class Failure:
    status: int
    retry_after: str | None = None


LOSE_REPLY = "lose reply"


class IngestGate:
    def __init__(self, upstream_url: str) -> None:
        upstream = urlsplit(upstream_url)
        self._upstream = (upstream.hostname, upstream.port)
        self.requests: list[SeenRequest] = []
        self._script: deque[Failure | str] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(), bind_and_activate=False)
        self._server.daemon_threads = True
        # Bound but not listening: the port is ours, and connecting to it is refused,
        # exactly as when the server is down.
        self._server.server_bind()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def open(self) -> None:
        self._server.server_activate()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()

    def fail_next(self, status: int, *, retry_after: str | None = None, times: int = 1) -> None:
        with self._lock:
            self._script.extend([Failure(status, retry_after)] * times)

    def lose_next_reply(self) -> None:
        """Forward the next request, then hang up before answering: the client cannot know
        its batch was stored."""
        with self._lock:
            self._script.append(LOSE_REPLY)

    def _next_action(self) -> Failure | str | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            relayed = {name: response.headers[name] for name in RELAYED_HEADERS if response.headers.get(name)}
            return response.status, relayed, response.read()
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name: self.headers[name] for name in FORWARDED_HEADERS if self.headers.get(name)}
                with gate._lock:
                    gate.requests.append(SeenRequest(headers, body))
                action = gate._next_action()
                if isinstance(action, Failure):
                    extra = {"Retry-After": action.retry_after} if action.retry_after is not None else {}
                    self._answer(action.status, extra, json.dumps({"detail": f"gate says {action.status}"}).encode())
                    return
                status, relayed, answer = gate._forward(self.path, headers, body)
                if action == LOSE_REPLY:
                    self.close_connection = True
                    return
                self._answer(status, relayed, answer)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                headers.setdefault("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # keep the test output clean
                pass

        return Handler
