"""Celery beat with a heartbeat file, so a container healthcheck can tell a beat that hangs
from one that is merely waiting: beat has no remote control to ping."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from celery.beat import PersistentScheduler

# Beat wakes at least this often (--max-interval) and touches its heartbeat each time.
MAX_INTERVAL_SECONDS = 60
# The healthcheck allows a few missed wake-ups before calling beat unhealthy.
HEARTBEAT_STALE_SECONDS = 3 * MAX_INTERVAL_SECONDS


def schedule_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Where beat keeps its last-run times. Losing it is harmless: every job is idempotent."""
    return Path(environ.get("BEAT_SCHEDULE_FILE") or Path(tempfile.gettempdir()) / "observatory-celerybeat-schedule")


def heartbeat_file(environ: Mapping[str, str] = os.environ) -> Path:
    schedule = schedule_file(environ)
    return schedule.with_name(schedule.name + ".heartbeat")


class HeartbeatScheduler(PersistentScheduler):
    def tick(self, *args: object, **kwargs: object) -> float:
        heartbeat_file().touch()
        return super().tick(*args, **kwargs)
