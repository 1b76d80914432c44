"""How long a periodic job may keep taking more work before it stops and leaves the rest to
its next run."""

from __future__ import annotations

from django.conf import settings


def time_budget_seconds(preferred: float) -> float:
    """`preferred`, capped at half the task's soft time limit: a job checks its budget between
    units of work, and a unit the limit interrupts is rolled back and the run logged as failed."""
    return min(preferred, settings.CELERY_TASK_SOFT_TIME_LIMIT / 2)
