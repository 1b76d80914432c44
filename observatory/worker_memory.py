"""A failed task's memory is given back before the pool process runs its next task.

Celery's tracer keeps a failed task's exception info in a local of its own frame, and that
frame is on the exception's traceback: a reference cycle, which also holds every frame the
exception went through with their locals (database cursors and their results, query text, the
rows of a batch). Only a full garbage collection frees such a cycle, and with the hundred
thousand objects a worker holds Python runs one rarely: while a job failed every few seconds
(bench/README.md, the soak), the pool process grew by about 1 MiB per failure. So the task
after a failure or a retry starts with a full collection, a few tens of milliseconds after
something that should be rare anyway.
"""

from __future__ import annotations

import gc

from celery import signals

_collect_before_next_task = False


def _after_failure(**kwargs: object) -> None:
    global _collect_before_next_task
    _collect_before_next_task = True


def _before_task(**kwargs: object) -> None:
    global _collect_before_next_task
    if _collect_before_next_task:
        _collect_before_next_task = False
        gc.collect()


def connect_worker_signals() -> None:
    signals.task_failure.connect(_after_failure, weak=False)
    signals.task_retry.connect(_after_failure, weak=False)
    signals.task_prerun.connect(_before_task, weak=False)
