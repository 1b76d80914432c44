"""The rollup job: recompute whole buckets for the minutes that changed.

Each batch is one transaction that
1. takes the project's rollup lock (a second job for the same project skips it: jobs never
   interleave their hour and day recomputes, so none can write a stale hour over a fresh one);
2. claims changed minutes (DELETE ... RETURNING of their committed marks in
   calls_changedminute, newest first, so a backlog of late data never delays the current
   minute); a write still in flight keeps its own mark for the next run;
3. recomputes those minutes from raw calls, their hours from minute rows, their days from
   hour rows (and the same for users), replacing the rows: nothing is ever incremented.

A job killed anywhere rolls back its claim with its work, so the minutes are claimed again by
the next run; running twice or concurrently computes the same rows. Buckets older than what
finer rows are kept for (ROLLUP_MINUTE_RETENTION_DAYS) are recomputed from raw calls instead,
and buckets older than the raw calls themselves are left as they are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from observatory.calls.models import ChangedMinute
from observatory.calls.partitions import day_bounds
from observatory.metrics.dimensions import ALL, DIMENSIONS, STORED_GROUPINGS, STORED_MASKS
from observatory.metrics.partitions import minute_rows_from
from observatory.metrics.sql import MEASURES, SKETCHES, quantile_column, raw_rows_sql, regroup_sql
from observatory.tenancy.models import Project

logger = logging.getLogger(__name__)

# pg_try_advisory_xact_lock(namespace, project id): the namespace keeps clear of other locks.
_LOCK_NAMESPACE = 0x524F4C4C  # "ROLL"
DEFAULT_BATCH_MINUTES = 1440

_DIMENSION_COLUMNS = ["project_id", "bucket", "dims", *DIMENSIONS, *MEASURES, *SKETCHES]
_QUANTILE_COLUMNS = [quantile_column(name) for name in SKETCHES]
_USER_COLUMNS = ["project_id", "bucket", "user_id", *MEASURES]


@dataclass(frozen=True)
class _Family:
    """One rollup family: its tables per granularity and how its rows are grouped."""

    tables: dict[str, str]
    dimensions: tuple[str, ...]
    columns: list[str]
    sketches: tuple[str, ...]
    groupings: tuple[tuple[str, ...], ...] | None

    def columns_of(self, unit: str) -> list[str]:
        """Hour and day rows of grouped families also keep their quantiles."""
        return self.columns + (_QUANTILE_COLUMNS if self.groupings and unit != "minute" else [])

    def source(self, table: str) -> str:
        condition = f" AND dims = {ALL}" if self.groupings else ""
        columns = ", ".join((*self.dimensions, *MEASURES, *self.sketches))
        return (
            f"SELECT t.* FROM unnest(%(lo)s::timestamptz[], %(hi)s::timestamptz[]) AS r(lo, hi) "
            f"CROSS JOIN LATERAL (SELECT bucket, {columns} FROM {table} "
            f"WHERE project_id = %(project)s AND bucket >= r.lo AND bucket < r.hi{condition} OFFSET 0) AS t"
        )

    def delete(self, table: str) -> str:
        condition = f" AND dims = ANY(ARRAY{list(STORED_MASKS)}::int2[])" if self.groupings else ""
        return f"DELETE FROM {table} WHERE project_id = %(project)s AND bucket = ANY(%(buckets)s){condition}"


DIMENSION_FAMILY = _Family(
    tables={"minute": "metrics_rollup_minute", "hour": "metrics_rollup_hour", "day": "metrics_rollup_day"},
    dimensions=DIMENSIONS,
    columns=_DIMENSION_COLUMNS,
    sketches=SKETCHES,
    groupings=STORED_GROUPINGS,
)
USER_FAMILY = _Family(
    tables={"minute": "metrics_user_minute", "hour": "metrics_user_hour", "day": "metrics_user_day"},
    dimensions=("user_id",),
    columns=_USER_COLUMNS,
    sketches=(),
    groupings=None,
)
FAMILIES = (DIMENSION_FAMILY, USER_FAMILY)


@dataclass
class RollupReport:
    batches: int = 0
    minutes: int = 0
    busy_projects: int = 0  # skipped because another job held their lock
    claimed: int = 0  # changed minutes claimed, including those too old to recompute


BUCKET_WIDTH = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def bucket_floor(moment: datetime, unit: str) -> datetime:
    """The start of the UTC `unit` (minute, hour or day) that `moment` falls in."""
    moment = moment.astimezone(UTC)
    if unit == "minute":
        return moment.replace(second=0, microsecond=0)
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def ranges_of(buckets: Iterable[datetime], unit: str) -> tuple[list[datetime], list[datetime]]:
    """Sorted buckets as the fewest [lo, hi) ranges, for the %(lo)s/%(hi)s parameters."""
    lows: list[datetime] = []
    highs: list[datetime] = []
    for bucket in sorted(set(buckets)):
        if highs and highs[-1] == bucket:
            highs[-1] = bucket + BUCKET_WIDTH[unit]
        else:
            lows.append(bucket)
            highs.append(bucket + BUCKET_WIDTH[unit])
    return lows, highs


def raw_calls_from(*, project: Project, today: date) -> datetime:
    """The oldest start time whose raw calls are all still stored for `project`."""
    days = min(project.retention_days or settings.RETENTION_DAYS, settings.RETENTION_DAYS)
    return day_bounds(today - timedelta(days=days))[0]


def _replace(cursor, *, family: _Family, unit: str, buckets: Sequence[datetime], select: str, project_id: int) -> None:
    """Replace `family`'s `unit` rows for `buckets` with the rows `select` computes."""
    if not buckets:
        return
    table = family.tables[unit]
    lows, highs = ranges_of(buckets, unit)
    params = {"project": project_id, "buckets": list(buckets), "lo": lows, "hi": highs}
    cursor.execute(family.delete(table), params)
    columns = ", ".join(family.columns_of(unit))
    cursor.execute(f"INSERT INTO {table} ({columns}) SELECT %(project)s, x.* FROM ({select}) x", params)


def _recompute(cursor, *, family: _Family, project_id: int, minutes: Sequence[datetime], today: date) -> None:
    """Replace `family`'s minute, hour and day rows around `minutes`."""
    kept_from = minute_rows_from(today=today)
    # Finer rows are trusted as a source from one day after their cut-off, so a retention run
    # at midnight can never remove them between this decision and the statement that reads them.
    finer_from = kept_from + timedelta(days=1)
    grouping = {"dimensions": family.dimensions, "groupings": family.groupings, "sketches": family.sketches}

    def from_raw(unit: str) -> str:
        rows = raw_rows_sql(bucket=f"date_trunc('{unit}', c.start_time)", dimensions=family.dimensions,
                            sketches=family.sketches)
        if not family.groupings:
            return rows
        if unit == "minute":  # minute rows are only ever grouped by every dimension
            return f"SELECT bucket, {ALL}::int2, {', '.join(family.columns[3:])} FROM ({rows}) y"
        return regroup_sql(source=rows, bucket="bucket", **grouping)

    def from_finer(finer: str, unit: str) -> str:
        return regroup_sql(source=family.source(family.tables[finer]), bucket=f"date_trunc('{unit}', bucket)",
                           **grouping)

    def replace(unit: str, buckets: list[datetime], select: str) -> None:
        _replace(cursor, family=family, unit=unit, buckets=buckets, select=select, project_id=project_id)

    replace("minute", [minute for minute in minutes if minute >= kept_from], from_raw("minute"))
    hours = sorted({bucket_floor(minute, "hour") for minute in minutes})
    replace("hour", [hour for hour in hours if hour >= finer_from], from_finer("minute", "hour"))
    replace("hour", [hour for hour in hours if hour < finer_from], from_raw("hour"))
    # Hours are kept at least as long as raw calls, so a day is always rebuilt from its hours.
    replace("day", sorted({bucket_floor(minute, "day") for minute in minutes}), from_finer("hour", "day"))


def _claim(cursor, *, project_id: int, limit: int) -> list[datetime]:
    """Claim up to `limit` changed minutes, newest first: every committed mark of each."""
    cursor.execute(
        """
        WITH picked AS (
            SELECT DISTINCT minute FROM calls_changedminute WHERE project_id = %(project)s
            ORDER BY minute DESC LIMIT %(limit)s
        )
        DELETE FROM calls_changedminute AS mark USING picked
        WHERE mark.project_id = %(project)s AND mark.minute = picked.minute
        RETURNING mark.minute
        """,
        {"project": project_id, "limit": limit},
    )
    return sorted({row[0] for row in cursor.fetchall()})


def rollup_batch(*, project: Project, limit: int = DEFAULT_BATCH_MINUTES, today: date | None = None,
                 using: str = DEFAULT_DB_ALIAS) -> RollupReport | None:
    """One transaction of the job for `project`: None when another job holds the project or
    nothing is left to do."""
    today = today or timezone.now().astimezone(UTC).date()
    report = RollupReport(batches=1)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        # Merging sketch bins sorts a few hundred thousand narrow rows per batch: in memory,
        # not in temporary files (the default 4MB spills).
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, project.pk])
        if not cursor.fetchone()[0]:
            return RollupReport(busy_projects=1)
        changed = _claim(cursor, project_id=project.pk, limit=limit)
        if not changed:
            return None
        raw_from = raw_calls_from(project=project, today=today)
        minutes = [minute for minute in changed if minute >= raw_from]
        report.minutes = len(minutes)
        report.claimed = len(changed)
        for family in FAMILIES:
            _recompute(cursor, family=family, project_id=project.pk, minutes=minutes, today=today)
    return report


def projects_pending(*, using: str = DEFAULT_DB_ALIAS) -> list[int]:
    return sorted(ChangedMinute.objects.using(using).values_list("project_id", flat=True).distinct())


def rollups_compute(*, project_ids: Sequence[int] | None = None, batch_minutes: int = DEFAULT_BATCH_MINUTES,
                    time_budget_seconds: float | None = None, today: date | None = None,
                    using: str = DEFAULT_DB_ALIAS) -> RollupReport:
    """Roll up every changed minute of `project_ids` (default: every project with work),
    batch after batch, until none is left or the time budget is spent. Once it is spent, each
    remaining project still gets one batch, so one project's backlog cannot starve the rest.

    A batch that claimed fewer minutes than it could took every minute marked when it started:
    a project's next batch only follows a full one. Under steady ingest the current minute is
    marked again while a batch runs; chasing those marks would keep the job busy for its whole
    time budget on every run (and make it fail wherever that budget reaches the task's time
    limit), when the next run, an interval later, recomputes that minute once."""
    started = time.monotonic()
    total = RollupReport()
    pending = projects_pending(using=using) if project_ids is None else list(project_ids)
    for project in Project.objects.using(using).filter(pk__in=pending).order_by("pk"):
        while True:
            report = rollup_batch(project=project, limit=batch_minutes, today=today, using=using)
            if report is None:
                break
            total.batches += report.batches
            total.minutes += report.minutes
            total.busy_projects += report.busy_projects
            total.claimed += report.claimed
            if report.busy_projects or report.claimed < batch_minutes:
                break
            if time_budget_seconds and time.monotonic() - started > time_budget_seconds:
                break
    if total.minutes:
        logger.info("rolled up %d minutes in %d batches", total.minutes, total.batches)
    return total


def rollups_reset(*, project: Project, using: str = DEFAULT_DB_ALIAS) -> int:
    """Forget `project`'s rollups and mark every minute of its stored calls as changed, so the
    job rebuilds them from scratch (after a restore, or to measure the job). Rollups of days
    whose raw calls are gone are kept. Returns the minutes marked."""
    today = timezone.now().astimezone(UTC).date()
    raw_from = raw_calls_from(project=project, today=today)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        for family in FAMILIES:
            for table in family.tables.values():
                cursor.execute(f"DELETE FROM {table} WHERE project_id = %s AND bucket >= %s", [project.pk, raw_from])
        cursor.execute(
            """
            INSERT INTO calls_changedminute (project_id, minute, marked_at)
            SELECT DISTINCT project_id, date_trunc('minute', start_time), now() FROM calls_call
            WHERE project_id = %s AND start_time >= %s
            """,
            [project.pk, raw_from],
        )
        return cursor.rowcount
