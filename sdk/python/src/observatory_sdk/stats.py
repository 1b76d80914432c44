"""What became of the events: counters kept by the delivery thread, read by anyone."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ClientStats:
    queued: int  # waiting in memory
    in_flight: int  # in the batch being sent
    accepted: int  # stored by the server
    duplicates: int  # already stored: a retry of a batch whose answer was lost
    rejected: int  # refused by the server for a bad field (logged with the reason)
    dropped: int  # pushed out of a full queue (oldest first) while the server was unreachable
    failed: int  # given up on: retries exhausted, a non-retryable error, or still queued at shutdown
    retries: int  # requests sent again after a network error, 408, 429 or 5xx


class Counters:
    """Mostly written by the delivery thread; shutdown adds what it abandons."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.failed = 0
        self.retries = 0

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)
