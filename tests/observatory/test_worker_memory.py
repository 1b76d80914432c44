"""A failed task's frames, and what their locals hold, are freed before the next task runs."""

from __future__ import annotations

import gc
import uuid
import weakref

import pytest
from celery.app.trace import build_tracer

from observatory.celery import app


class Rows:
    """Stands for what a job's frames hold: a cursor's results, a batch of rows."""


held: list[weakref.ref] = []


@app.task(name="tests.worker_memory.fails")
def fails() -> None:
    rows = Rows()
    held.append(weakref.ref(rows))
    raise RuntimeError("the database went away")


@app.task(name="tests.worker_memory.succeeds")
def succeeds() -> str:
    return "ok"


def run_as_the_pool_process_does(task) -> None:
    """The tracer a prefork pool process runs a task message with (not the eager one)."""
    task_id = uuid.uuid4().hex
    tracer = build_tracer(task.name, task, app=app, hostname="test@host")
    tracer(task_id, (), {}, {"id": task_id, "delivery_info": {}, "hostname": "test@host"})


@pytest.fixture
def no_automatic_collection():
    """A full collection can happen at any moment on its own; here it must not."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_failed_tasks_locals_are_freed_before_the_next_task(no_automatic_collection):
    held.clear()
    run_as_the_pool_process_does(fails)
    [rows] = held
    assert rows() is not None  # kept alive by the tracer's reference cycle, for now
    run_as_the_pool_process_does(succeeds)
    assert rows() is None


def test_tasks_that_succeed_cost_no_collection(no_automatic_collection, monkeypatch):
    collections = []
    monkeypatch.setattr(gc, "collect", lambda *args: collections.append(args))
    for _ in range(3):
        run_as_the_pool_process_does(succeeds)
    assert collections == []
