"""A local stand-in for the OpenAI and Anthropic HTTP APIs, enough for their official clients.

POST /v1/chat/completions and POST /v1/messages, plain JSON or server-sent events. What
it answers depends on the request, the way a real provider's would:
- the answer is ANSWER, one token per word; a max_tokens below that cuts it short and
  ends with finish_reason "length" (OpenAI) / stop_reason "max_tokens" (Anthropic);
- model "gpt-broken" fails with a 500, model "claude-overloaded" with a 429;
- model "o4-mini" spends REASONING_TOKENS on reasoning, reported in the usage;
- a request offering tools is answered with a call of the first one (TOOL_ARGUMENTS).
Every request body is kept in `requests` for the tests to inspect.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER_TOKENS = ["The", " capital", " of", " France", " is", " Paris."]
ANSWER = "".join(ANSWER_TOKENS)
OPENAI_PROMPT_TOKENS = 42
OPENAI_CACHED_TOKENS = 10
REASONING_TOKENS = 64
ANTHROPIC_USAGE = {"input_tokens": 20, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 30}
# Providers answer with the dated snapshot of the model that was asked for.
TOOL_ARGUMENTS = '{"city": "Paris"}'
SNAPSHOTS = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "claude-haiku-4-5": "claude-haiku-4-5-20251001"}


def _answer_for(body: dict[str, Any]) -> tuple[list[str], bool]:
    """(the tokens of the answer, whether max_tokens cut it short)."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None and limit < len(ANSWER_TOKENS):
        return ANSWER_TOKENS[:limit], True
    return ANSWER_TOKENS, False


def openai_usage(body: dict[str, Any], tokens: list[str]) -> dict[str, Any]:
    reasoning = REASONING_TOKENS if body["model"] == "o4-mini" else 0
    completion = len(tokens) + reasoning
    return {
        "prompt_tokens": OPENAI_PROMPT_TOKENS,
        "completion_tokens": completion,
        "total_tokens": OPENAI_PROMPT_TOKENS + completion,
        "prompt_tokens_details": {"cached_tokens": OPENAI_CACHED_TOKENS, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0},
    }


def _tool_call(body: dict[str, Any]) -> dict[str, Any]:
    name = body["tools"][0]["function"]["name"]
    return {"index": 0, "id": "call_fake", "type": "function", "function": {"name": name, "arguments": TOOL_ARGUMENTS}}


def openai_completion(body: dict[str, Any]) -> dict[str, Any]:
    tokens, cut = _answer_for(body)
    if body.get("tools"):
        call = {key: value for key, value in _tool_call(body).items() if key != "index"}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish_reason = "tool_calls"
    else:
        message = {"role": "assistant", "content": "".join(tokens), "refusal": None}
        finish_reason = "length" if cut else "stop"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": SNAPSHOTS.get(body["model"], body["model"]),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": openai_usage(body, tokens),
    }


def openai_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    tokens, cut = _answer_for(body)
    model = SNAPSHOTS.get(body["model"], body["model"])
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        message = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}
        if include_usage:
            message["usage"] = None
        return message

    chunks = [chunk({"role": "assistant", "content": ""})]
    if body.get("tools"):
        # Arguments arrive in pieces after the call's id and name, as OpenAI streams them.
        call = _tool_call(body)
        opening = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
        chunks.append(chunk({"tool_calls": [opening]}))
        half = len(TOOL_ARGUMENTS) // 2
        for piece in (TOOL_ARGUMENTS[:half], TOOL_ARGUMENTS[half:]):
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        chunks.append(chunk({}, "tool_calls"))
    else:
        chunks += [chunk({"content": token}) for token in tokens]
        chunks.append(chunk({}, "length" if cut else "stop"))
    if include_usage:
        chunks.append({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
                       "model": model, "choices": [], "usage": openai_usage(body, tokens)})
    return chunks


ANTHROPIC_TOOL_PREAMBLE = "Let me check."


def anthropic_message(body: dict[str, Any]) -> dict[str, Any]:
    tokens, cut = _answer_for(body)
    if body.get("tools"):
        content = [{"type": "text", "text": ANTHROPIC_TOOL_PREAMBLE},
                   {"type": "tool_use", "id": "toolu_fake", "name": body["tools"][0]["name"],
                    "input": json.loads(TOOL_ARGUMENTS)}]
        stop_reason = "tool_use"
    else:
        content = [{"type": "text", "text": "".join(tokens)}]
        stop_reason = "max_tokens" if cut else "end_turn"
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": SNAPSHOTS.get(body["model"], body["model"]),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {**ANTHROPIC_USAGE, "output_tokens": len(tokens)},
    }


def anthropic_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    tokens, cut = _answer_for(body)
    message = anthropic_message(body)
    start = {**message, "content": [], "stop_reason": None, "usage": {**ANTHROPIC_USAGE, "output_tokens": 1}}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            pieces = tokens if len(message["content"]) == 1 else [block["text"]]
            deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
        else:
            opening = {**block, "input": {}}
            half = len(TOOL_ARGUMENTS) // 2
            deltas = [{"type": "input_json_delta", "partial_json": piece}
                      for piece in (TOOL_ARGUMENTS[:half], TOOL_ARGUMENTS[half:])]
        events.append({"type": "content_block_start", "index": index, "content_block": opening})
        events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        events.append({"type": "content_block_stop", "index": index})
    events.append({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                   "usage": {"output_tokens": message["usage"]["output_tokens"]}})
    events.append({"type": "message_stop"})
    return events


class FakeLLMServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                if self.path == "/v1/chat/completions":
                    self._openai(body)
                elif self.path == "/v1/messages":
                    self._anthropic(body)
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

            def _openai(self, body: dict[str, Any]) -> None:
                if body["model"] == "gpt-broken":
                    self._json(500, {"error": {"message": "The server had an error while processing your request.",
                                               "type": "server_error", "param": None, "code": None}})
                elif body.get("stream"):
                    self._sse((None, chunk) for chunk in openai_chunks(body))
                    self.wfile.write(b"data: [DONE]\n\n")
                else:
                    self._json(200, openai_completion(body))

            def _anthropic(self, body: dict[str, Any]) -> None:
                if body["model"] == "claude-overloaded":
                    error = {"type": "rate_limit_error",
                             "message": "Number of request tokens has exceeded your rate limit."}
                    self._json(429, {"type": "error", "error": error}, {"retry-after": "30"})
                elif body.get("stream"):
                    self._sse((event["type"], event) for event in anthropic_events(body))
                else:
                    self._json(200, anthropic_message(body))

            def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events) -> None:
                # HTTP/1.0: the body ends when the connection closes, as SSE streams may.
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for name, data in events:
                    prefix = f"event: {name}\n".encode() if name else b""
                    self.wfile.write(prefix + b"data: " + json.dumps(data).encode() + b"\n\n")
                    self.wfile.flush()

            def log_message(self, format: str, *args) -> None:
                pass

        return Handler
