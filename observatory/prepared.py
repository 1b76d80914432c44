"""Prepared statements on Django's database connection, for the few queries every ingest
request runs.

Django's PostgreSQL cursors bind parameters on the client (values are inlined into the SQL
text), so PostgreSQL parses and plans every execution, which for the ingest insert cost more
than running it. A psycopg cursor with server-side binding on the same connection can prepare
a statement once per connection (settings: DATABASE_PREPARED_STATEMENTS).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections


@contextmanager
def server_cursor(using: str = DEFAULT_DB_ALIAS) -> Iterator[psycopg.Cursor]:
    """A server-side binding cursor on Django's connection, opened as Django opens its own: a
    reused connection is health-checked first (a dead one is replaced, not failed on), and
    errors arrive as Django's, so an outage is a 503 and the broken connection is closed."""
    connection = connections[using]
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor
