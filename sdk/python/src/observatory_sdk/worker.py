"""The delivery thread: takes batches from the buffer, sends them, retries what may succeed later.

Nothing here raises into the application: every outcome ends in a counter and, when it
loses or refuses data, a log line saying why. Retrying is safe because every event
carries its id, which the server uses to store it once.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

from observatory_sdk.buffer import EventBuffer, QueuedEvent
from observatory_sdk.config import ClientConfig
from observatory_sdk.events import batch_body, event_encode
from observatory_sdk.retry import RETRYABLE_STATUSES, Backoff, retry_after_seconds
from observatory_sdk.stats import Counters
from observatory_sdk.transport import Reply, Transport

logger = logging.getLogger("observatory_sdk")

_EMPTY_BATCH_BYTES = len(batch_body([]))


class DeliveryWorker:
    def __init__(self, *, buffer: EventBuffer, transport: Transport, config: ClientConfig, counters: Counters) -> None:
        self._buffer = buffer
        self._transport = transport
        self._counters = counters
        self._max_request_bytes = config.max_request_bytes
        self._max_retries = config.max_retries
        self._backoff = Backoff(config.backoff_initial, config.backoff_max)
        self._thread = threading.Thread(target=self._run, name="observatory-delivery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            batch = self._buffer.next_batch()
            if batch is None:
                return
            try:
                for payloads, body in self._requests(batch):
                    self._send(payloads, body)
            except Exception:
                logger.exception("Observatory: unexpected error while sending %d events; they are lost", len(batch))
                self._counters.add(failed=len(batch))
            finally:
                self._buffer.settle()

    def _requests(self, batch: list[QueuedEvent]) -> Iterator[tuple[list[dict[str, Any]], bytes]]:
        """The batch as request bodies no larger than max_request_bytes (one event may exceed it alone)."""
        payloads: list[dict[str, Any]] = []
        parts: list[bytes] = []
        size = _EMPTY_BATCH_BYTES
        for event in batch:
            try:
                encoded = event_encode(event.payload)
            except (TypeError, ValueError) as error:
                logger.error(
                    "Observatory: event %s cannot be encoded as JSON (%s); dropped", event.payload.get("id"), error
                )
                self._counters.add(failed=1)
                continue
            if parts and size + len(encoded) + 1 > self._max_request_bytes:
                yield payloads, batch_body(parts)
                payloads, parts, size = [], [], _EMPTY_BATCH_BYTES
            payloads.append(event.payload)
            parts.append(encoded)
            size += len(encoded) + 1
        if parts:
            yield payloads, batch_body(parts)

    def _send(self, payloads: list[dict[str, Any]], body: bytes) -> None:
        count = len(payloads)
        attempt = 0
        while True:
            retry_after = None
            try:
                reply = self._transport.post(body)
            except (OSError, http.client.HTTPException) as error:
                # URLError wraps the socket error; its reason reads better than its repr.
                reason = str(getattr(error, "reason", None) or error) or type(error).__name__
            else:
                if reply.status not in RETRYABLE_STATUSES:
                    self._settle_reply(reply, payloads)
                    return
                reason = f"HTTP {reply.status}{_detail_suffix(reply)}"
                retry_after = retry_after_seconds(reply.headers.get("Retry-After"))
            attempt += 1
            if self._buffer.stopped or (self._max_retries is not None and attempt > self._max_retries):
                logger.error("Observatory: gave up on %d events after %d attempts (%s)", count, attempt, reason)
                self._counters.add(failed=count)
                return
            delay = self._backoff.delay(attempt, retry_after)
            logger.warning(
                "Observatory: could not send %d events (%s); retry %d in %.2f s", count, reason, attempt, delay
            )
            if self._buffer.wait_stopped(delay):
                logger.error("Observatory: shut down before %d events could be sent (%s)", count, reason)
                self._counters.add(failed=count)
                return
            self._counters.add(retries=1)

    def _settle_reply(self, reply: Reply, payloads: list[dict[str, Any]]) -> None:
        answer = _json_object(reply.body)
        # 400 with per-event results means every event was rejected for its own reasons;
        # a 400 without them is a request-level problem.
        if 200 <= reply.status < 300 or (reply.status == 400 and "results" in answer):
            self._account(answer, payloads)
            return
        hint = ""
        if 300 <= reply.status < 400:
            hint = f" (redirected to {reply.headers.get('Location')}: set base_url to that address)"
        elif reply.status == 401:
            hint = " (check the secret key)"
        logger.error(
            "Observatory refused %d events: HTTP %d%s%s", len(payloads), reply.status, _detail_suffix(reply), hint
        )
        self._counters.add(failed=len(payloads))

    def _account(self, answer: dict[str, Any], payloads: list[dict[str, Any]]) -> None:
        results = answer.get("results")
        if not isinstance(results, list):
            # A 2xx without the usual body (a proxy in between, say): the server took the batch.
            self._counters.add(accepted=len(payloads))
            return
        for result in results:
            if not isinstance(result, dict):
                continue
            index = result.get("index")
            payload = payloads[index] if isinstance(index, int) and 0 <= index < len(payloads) else {}
            if result.get("status") == "rejected":
                logger.warning(
                    "Observatory rejected event %s (%s): %s",
                    payload.get("id"), _describe(payload), _problems(result.get("errors")),
                )
            if result.get("warnings"):
                logger.info(
                    "Observatory stored event %s with warnings: %s", payload.get("id"), "; ".join(result["warnings"])
                )
        self._counters.add(
            accepted=_int(answer.get("accepted")),
            duplicates=_int(answer.get("duplicates")),
            rejected=_int(answer.get("rejected")),
        )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _detail_suffix(reply: Reply) -> str:
    detail = _json_object(reply.body).get("detail")
    if detail is None:
        detail = reply.body[:200].decode("utf-8", "replace").strip()
    return f": {detail}" if detail else ""


def _describe(payload: dict[str, Any]) -> str:
    return str(payload.get("name") or payload.get("model") or payload.get("kind") or "event")


def _problems(errors: Any) -> str:
    if not isinstance(errors, list) or not errors:
        return "no reason given"
    return "; ".join(
        f"{error.get('field', '?')}: {error.get('message', '')}" if isinstance(error, dict) else str(error)
        for error in errors
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0
