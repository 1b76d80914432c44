"""The ingest path's prepared statements skip Django's ping before each request and replace a
connection that died while idle instead: the next request still succeeds, once."""

from __future__ import annotations

import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from observatory.calls.models import Call
from observatory.prepared import server_cursor, with_live_connection
from tests.ingest.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)


def terminate_backend_of_djangos_connection() -> int:
    pid = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    return pid


def backend_pid() -> int:
    with server_cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.parametrize("size", [1, 40])  # one statement, and a staged transaction
def test_an_ingest_request_on_a_connection_killed_while_idle_succeeds(ingest, size):
    assert ingest.post(event(id="before")).status_code == 200
    killed = terminate_backend_of_djangos_connection()
    response = ingest.post({"events": [event(id=f"after-{index}") for index in range(size)]})
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == size
    assert backend_pid() != killed
    assert Call.objects.count() == size + 1


def test_work_on_a_dead_connection_runs_once_more_on_a_new_one():
    backend_pid()  # connected
    killed = terminate_backend_of_djangos_connection()
    runs = []

    def work():
        runs.append(1)
        return backend_pid()

    assert with_live_connection(work) != killed
    assert len(runs) == 2


def test_a_failed_statement_on_a_live_connection_is_not_repeated():
    backend_pid()
    runs = []

    def work():
        runs.append(1)
        with server_cursor() as cursor:
            cursor.execute("SET statement_timeout = 1")
            try:
                cursor.execute("SELECT pg_sleep(1)")
            finally:
                cursor.execute("RESET statement_timeout")

    with pytest.raises(OperationalError):
        with_live_connection(work)
    assert runs == [1]


def test_nothing_is_repeated_inside_a_transaction():
    backend_pid()
    terminate_backend_of_djangos_connection()
    runs = []

    def work():
        runs.append(1)
        return backend_pid()

    with pytest.raises(OperationalError), transaction.atomic():
        with_live_connection(work)
    assert runs == [1]
    connection.close()
