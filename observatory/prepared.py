"""Prepared statements on Django's database connection, for the few queries every ingest
request runs.

Django's PostgreSQL cursors bind parameters on the client (values are inlined into the SQL
text), so PostgreSQL parses and plans every execution, which for the ingest insert cost more
than running it. A psycopg cursor with server-side binding on the same connection can prepare
a statement once per connection (settings: DATABASE_PREPARED_STATEMENTS).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

T = TypeVar("T")


@contextmanager
def server_cursor(using: str = DEFAULT_DB_ALIAS) -> Iterator[psycopg.Cursor]:
    """A server-side binding cursor on Django's connection. Errors arrive as Django's, so an
    outage is a 503 and a broken connection is closed at the end of the request.

    Unlike Django's own cursors it does not ping a reused connection first (CONN_HEALTH_CHECKS):
    that is one more round trip on every ingest request. Run the work in `with_live_connection`
    to replace a connection that died while idle."""
    connection = connections[using]
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def with_live_connection(work: Callable[[], T], using: str = DEFAULT_DB_ALIAS) -> T:
    """`work()`, run once more on a new connection if the reused one turns out to be dead
    (PostgreSQL restarted, or ended the session, while the connection sat idle).

    `work` must be safe to repeat: a read, or a write that stores a call once whatever the
    retries. Inside a transaction nothing is retried: the transaction died with its connection."""
    connection = connections[using]
    if connection.in_atomic_block or connection.connection is None:
        return work()
    # A dead connection is replaced below: Django need not ping it first either (as it does
    # when `work` opens a transaction).
    connection.health_check_done = True
    try:
        return work()
    except (OperationalError, InterfaceError) as error:
        if not _connection_lost(error, connection.connection):
            raise  # the connection is fine: the statement itself failed (a timeout, say)
        connection.close()
        return work()


# The server ended the session (administrator command, crash or shutdown), or the connection
# failed (class 08): the statement did not run on a live session.
_SESSION_ENDED = frozenset({"57P01", "57P02", "57P03"})


def _connection_lost(error: Exception, raw: psycopg.Connection | None) -> bool:
    if raw is None or raw.closed or raw.broken:
        return True
    sqlstate = getattr(error.__cause__, "sqlstate", None) or ""
    return sqlstate in _SESSION_ENDED or sqlstate.startswith("08")
