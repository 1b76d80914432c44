"""The bounded queue between the application's threads and the delivery thread.

Recording must never block on the network, so events wait here. When the server is away
for longer than the queue lasts, the oldest events go first (the newest describe what is
happening now) and each one lost is counted. The batch being delivered is held apart
from the queue until it is settled, so `flush` can tell when everything recorded before it
has been dealt with.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass
class QueuedEvent:
    seq: int
    queued_at: float  # time.monotonic()
    payload: dict[str, Any]


class EventBuffer:
    def __init__(self, *, capacity: int, batch_size: int, flush_interval: float) -> None:
        self._capacity = capacity
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._queue: deque[QueuedEvent] = deque()
        self._in_flight: list[QueuedEvent] = []
        self._last_seq = 0
        self._flush_through = 0  # events up to this seq are sent without waiting for a full batch
        self._closing = False  # send what is queued, then stop
        self._stopped = False  # stop now, abandoning what is left
        self.dropped = 0
        lock = threading.Lock()
        self._work = threading.Condition(lock)  # the delivery thread waits on this
        self._settled = threading.Condition(lock)  # flush() waits on this

    def put(self, payload: dict[str, Any]) -> bool:
        """Queue one event; False when the queue was full and the oldest event was dropped."""
        with self._work:
            room = len(self._queue) < self._capacity
            if not room:
                self._queue.popleft()
                self.dropped += 1
                self._settled.notify_all()
            self._last_seq += 1
            self._queue.append(QueuedEvent(self._last_seq, time.monotonic(), payload))
            # Waking the delivery thread for every event would cost a context switch each.
            # It needs waking when the first event arrives (to time flush_interval from it)
            # and when a batch is full; in between it wakes by itself.
            if len(self._queue) in (1, self._batch_size):
                self._work.notify()
            return room

    def next_batch(self) -> list[QueuedEvent] | None:
        """Block until a batch is due, and hand it over as the batch in flight.

        Due means: a full batch is queued, a flush asked for it, the oldest event has waited
        flush_interval, or the buffer is closing. None once closed and empty, or stopped.
        """
        with self._work:
            while True:
                if self._stopped:
                    return None
                if self._queue:
                    oldest = self._queue[0]
                    wait = oldest.queued_at + self._flush_interval - time.monotonic()
                    due = (
                        len(self._queue) >= self._batch_size
                        or self._closing
                        or oldest.seq <= self._flush_through
                        or wait <= 0
                    )
                    if due:
                        count = min(self._batch_size, len(self._queue))
                        self._in_flight = [self._queue.popleft() for _ in range(count)]
                        return list(self._in_flight)
                    self._work.wait(wait)
                elif self._closing:
                    return None
                else:
                    self._work.wait()

    def settle(self) -> None:
        """The batch in flight was delivered, rejected or given up on."""
        with self._work:
            self._in_flight = []
            self._settled.notify_all()

    def flush(self, timeout: float | None) -> bool:
        """Ask for everything queued so far to be sent now; wait until it is settled."""
        with self._work:
            target = self._last_seq
            self._flush_through = max(self._flush_through, target)
            self._work.notify()
            self._settled.wait_for(lambda: self._stopped or self._oldest_pending_seq() > target, timeout)
            return self._oldest_pending_seq() > target

    def _oldest_pending_seq(self) -> float:
        if self._in_flight:
            return self._in_flight[0].seq
        if self._queue:
            return self._queue[0].seq
        return float("inf")

    def close(self) -> None:
        """No more events are accepted; the delivery thread sends what is queued and ends."""
        with self._work:
            self._closing = True
            self._work.notify_all()

    def stop(self) -> list[QueuedEvent]:
        """Stop now; returns the queued events, which will never be sent. The batch in
        flight stays with the delivery thread, which gives up on it and settles it."""
        with self._work:
            self._stopped = True
            self._closing = True
            left = list(self._queue)
            self._queue.clear()
            self._work.notify_all()
            self._settled.notify_all()
            return left

    def wait_stopped(self, seconds: float) -> bool:
        """Sleep between retries, waking early (True) if the buffer is stopped meanwhile."""
        with self._work:
            return self._work.wait_for(lambda: self._stopped, seconds)

    @property
    def stopped(self) -> bool:
        return self._stopped

    def sizes(self) -> tuple[int, int]:
        """(queued, in flight)."""
        with self._work:
            return len(self._queue), len(self._in_flight)
