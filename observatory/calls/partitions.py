"""Daily partitions of the call store: created ahead, dropped whole when retention ends.

Each partitioned table has one partition per UTC day, named `<table>_pYYYYMMDD`, plus a
DEFAULT partition that catches a row for a day whose partition does not exist yet, so that
nothing accepted is ever refused by the database. When that day's partition is created
later, its rows are moved out of the default partition first (PostgreSQL would otherwise
refuse to create it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone
from psycopg import sql

logger = logging.getLogger(__name__)

PARTITIONED_TABLES = ("calls_call", "calls_callcontent")
_NAME_PATTERN = re.compile(r"_p(\d{8})$")
# DDL on a partitioned table waits for every query on it; give up quickly and retry at the
# next run (partitions are made days ahead) instead of stalling ingest behind the lock.
LOCK_TIMEOUT = "5s"


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    lower = datetime.combine(day, time.min, tzinfo=UTC)
    return lower, lower + timedelta(days=1)


def partitions_existing(*, table: str, using: str = DEFAULT_DB_ALIAS) -> dict[date, str]:
    """The daily partitions of `table` by day (the default partition is not listed)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname
            FROM pg_inherits
            JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
            JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            WHERE parent.relname = %s
            """,
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = {}
    for name in names:
        match = _NAME_PATTERN.search(name)
        if match:
            days[datetime.strptime(match.group(1), "%Y%m%d").date()] = name
    return days


def partitions_ensure(
    *,
    first_day: date,
    last_day: date,
    using: str = DEFAULT_DB_ALIAS,
    tables: Sequence[str] = PARTITIONED_TABLES,
    column: str = "start_time",
) -> list[str]:
    """Create the missing daily partitions of `tables` (partitioned by `column`) for the days
    in [first_day, last_day]. Returns the names created."""
    created = []
    for table in tables:
        existing = partitions_existing(table=table, using=using)
        day = first_day
        while day <= last_day:
            if day not in existing:
                _partition_create(table=table, day=day, using=using, column=column)
                created.append(partition_name(table, day))
            day += timedelta(days=1)
    if created:
        logger.info("created %d partitions from %s to %s", len(created), first_day, last_day)
    return created


def _partition_create(*, table: str, day: date, using: str, column: str = "start_time") -> None:
    lower, upper = day_bounds(day)
    name = sql.Identifier(partition_name(table, day))
    parent = sql.Identifier(table)
    default = sql.Identifier(f"{table}_default")
    bounds = sql.SQL("FOR VALUES FROM ({}) TO ({})").format(
        sql.Literal(lower.isoformat()), sql.Literal(upper.isoformat())
    )
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        cursor.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {col} >= %s AND {col} < %s)").format(
                default, col=sql.Identifier(column)
            ),
            [lower, upper],
        )
        (stranded,) = cursor.fetchone()
        if not stranded:
            cursor.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} {}").format(name, parent, bounds))
            return
        cursor.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(name, parent)
        )
        cursor.execute(
            sql.SQL(
                "WITH moved AS (DELETE FROM {} WHERE {col} >= %s AND {col} < %s RETURNING *) "
                "INSERT INTO {} SELECT * FROM moved"
            ).format(default, name, col=sql.Identifier(column)),
            [lower, upper],
        )
        logger.warning("moved %d rows of %s out of %s", cursor.rowcount, day, f"{table}_default")
        cursor.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(parent, name, bounds))


def partitions_drop_before(
    *,
    day: date,
    using: str = DEFAULT_DB_ALIAS,
    tables: Sequence[str] = PARTITIONED_TABLES,
    column: str = "start_time",
) -> list[str]:
    """Drop every daily partition of `tables` for days before `day`, and delete rows older
    than it that sit in the default partitions. Returns the partitions dropped."""
    dropped = []
    cutoff, _ = day_bounds(day)
    for table in tables:
        for partition_day, name in sorted(partitions_existing(table=table, using=using).items()):
            if partition_day >= day:
                continue
            with transaction.atomic(using=using), connections[using].cursor() as cursor:
                cursor.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
                cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
            dropped.append(name)
        with connections[using].cursor() as cursor:
            cursor.execute(
                sql.SQL("DELETE FROM {} WHERE {} < %s").format(
                    sql.Identifier(f"{table}_default"), sql.Identifier(column)
                ),
                [cutoff],
            )
    if dropped:
        logger.info("dropped %d partitions before %s", len(dropped), day)
    return dropped


@dataclass
class MaintenanceReport:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    project_rows_deleted: int = 0


def ingest_window_first_day(*, today: date) -> date:
    """The oldest day ingest accepts, which therefore needs a partition."""
    return today - timedelta(days=min(settings.RETENTION_DAYS, settings.INGEST_MAX_PAST_DAYS))


def call_store_maintain(*, today: date | None = None, using: str = DEFAULT_DB_ALIAS) -> MaintenanceReport:
    """Create partitions for the ingest window and the days ahead; drop expired ones; apply
    shorter per-project retention. Safe to run at any time and any number of times."""
    from observatory.calls.retention import project_retention_apply

    today = today or timezone.now().astimezone(UTC).date()
    report = MaintenanceReport()
    report.created = partitions_ensure(
        first_day=ingest_window_first_day(today=today),
        last_day=today + timedelta(days=settings.PARTITIONS_AHEAD_DAYS),
        using=using,
    )
    report.dropped = partitions_drop_before(day=today - timedelta(days=settings.RETENTION_DAYS), using=using)
    report.project_rows_deleted = project_retention_apply(today=today, using=using)
    return report


def create_partitions_after_migrate(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    today = timezone.now().astimezone(UTC).date()
    partitions_ensure(
        first_day=ingest_window_first_day(today=today),
        last_day=today + timedelta(days=settings.PARTITIONS_AHEAD_DAYS),
        using=using,
    )


def partitioned_index_create(*, table: str, name: str, definition: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """Create index `name` on partitioned `table` without blocking writes for the whole build.

    `CREATE INDEX` on a partitioned table cannot be CONCURRENTLY and would hold off ingest
    while it indexes every partition. Instead the parent gets an invalid index of its own
    (ON ONLY, instant), each existing partition is indexed CONCURRENTLY and attached, and the
    parent's index becomes valid with the last attachment. Partitions created afterwards get
    the index automatically. Must run outside a transaction; safe to run again after a failure.
    `definition` is the column list and any INCLUDE/WHERE, e.g. "(project_id, user_id) WHERE ...".
    """
    with connections[using].cursor() as cursor:
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON ONLY {table} {definition}")
        cursor.execute(
            """
            SELECT child.relname FROM pg_inherits
            JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
            JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            WHERE parent.relname = %s ORDER BY child.relname
            """,
            [table],
        )
        partitions = [row[0] for row in cursor.fetchall()]
        for partition in partitions:
            # Partitions created after the parent index got theirs (with a generated name).
            cursor.execute(
                """
                SELECT 1 FROM pg_inherits h JOIN pg_index i ON i.indexrelid = h.inhrelid
                WHERE h.inhparent = to_regclass(%s) AND i.indrelid = to_regclass(%s)
                """,
                [name, partition],
            )
            if cursor.fetchone() is not None:
                continue
            child = f"{partition}_{name.removeprefix(table + '_')}"[:63]
            # A build interrupted earlier leaves an invalid index behind: build it again.
            cursor.execute(
                "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [child]
            )
            invalid = cursor.fetchone()
            if invalid and invalid[0]:
                cursor.execute(f"DROP INDEX CONCURRENTLY {child}")
            cursor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {child} ON {partition} {definition}")
            cursor.execute(f"ALTER INDEX {name} ATTACH PARTITION {child}")
