"""A local stand-in for the OpenAI chat completions API, for tests that drive the real SDK.

The last user message picks the behaviour: "fail" answers 500, "limit" stops with
finish_reason=length, anything else answers normally. Streaming follows the SSE format,
including the usage chunk when stream_options.include_usage is set.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROMPT_TOKENS, COMPLETION_TOKENS, CACHED_TOKENS = 120, 18, 64


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # quiet test output
        pass

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(request)
        text = str(request["messages"][-1]["content"])
        if "fail" in text:
            self._send(500, {"error": {"message": "The server had an error", "type": "server_error"}})
            return
        finish_reason = "length" if "limit" in text else "stop"
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                 "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                 "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS},
                 "completion_tokens_details": {"reasoning_tokens": 0}}
        common = {"id": "chatcmpl-test", "created": int(time.time()), "model": request["model"] + "-2024-07-18",
                  "system_fingerprint": "fp_test"}
        if not request.get("stream"):
            self._send(200, {**common, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Hello there!"}, "finish_reason": finish_reason}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunks = [{"role": "assistant", "content": ""}, {"content": "Hello"}, {"content": " there!"}]
        for index, delta in enumerate(chunks):
            if index == 1:
                time.sleep(0.05)  # the first token arrives after a pause, as it does for real
            self._chunk({**common, "object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self._chunk({**common, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]})
        if (request.get("stream_options") or {}).get("include_usage"):
            self._chunk({**common, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        self._write(b"data: [DONE]\n\n")
        self._write(b"")

    def _send(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _chunk(self, body: dict) -> None:
        self._write(f"data: {json.dumps(body)}\n\n".encode())

    def _write(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class FakeOpenAI:
    def __enter__(self) -> FakeOpenAI:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.requests = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def requests(self) -> list[dict]:
        return self.server.requests

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
