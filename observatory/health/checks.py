"""What /readyz and /metrics ask of the database and the broker, each bounded in time.

A check never raises: it returns what it found, so one failing dependency is reported by
name while the others are still checked. Failure details go to the log, not to the caller,
because a readiness probe may be reachable by anyone who can reach the load balancer.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from kombu import Connection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = "ok"


def database_check(*, using: str = DEFAULT_DB_ALIAS) -> Check:
    try:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # any failure means "not ready", whatever the driver raised
        logger.warning("readiness: database unreachable: %s", error)
        return Check("database", False, "unreachable")
    return Check("database", True)


@functools.cache
def _migrations_on_disk() -> frozenset[tuple[str, str]]:
    # The code does not change while the process runs, so the graph is built once.
    return frozenset(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)


def migrations_check(*, using: str = DEFAULT_DB_ALIAS) -> Check:
    try:
        applied = set(MigrationRecorder(connections[using]).applied_migrations())
    except Exception as error:
        logger.warning("readiness: cannot read applied migrations: %s", error)
        return Check("migrations", False, "unknown")
    missing = _migrations_on_disk() - applied
    if missing:
        return Check("migrations", False, f"{len(missing)} unapplied")
    return Check("migrations", True)


@contextlib.contextmanager
def broker_connection(*, timeout: float) -> Iterator[Connection]:
    """A connection to the configured broker that gives up after `timeout` seconds
    (redis, amqp and the file-system transport alike)."""
    options = {
        **getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "max_retries": 0,
    }
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        yield connection


def broker_check(*, timeout: float) -> Check:
    try:
        with broker_connection(timeout=timeout) as connection:
            connection.default_channel  # noqa: B018 - opening a channel proves the broker answers
    except Exception as error:
        logger.warning("readiness: broker unreachable: %s", error)
        return Check("broker", False, "unreachable")
    return Check("broker", True)


def queue_depths(*, connection: Connection, queues: Sequence[str]) -> dict[str, int]:
    """Messages waiting in each queue (not those a worker has taken and not yet acknowledged)."""
    depths = {}
    for queue in queues:
        channel = connection.channel()
        try:
            _, waiting, _ = channel.queue_declare(queue=queue, passive=True)
        except connection.channel_errors:
            waiting = 0  # never declared: no worker has consumed it and nothing was sent to it
        finally:
            with contextlib.suppress(Exception):
                channel.close()
        depths[queue] = int(waiting)
    return depths


def readiness() -> list[Check]:
    timeout = settings.HEALTH_CHECK_TIMEOUT
    database = database_check()
    migrations = migrations_check() if database.ok else Check("migrations", False, "not checked")
    return [database, broker_check(timeout=timeout), migrations]
