"""Upkeep of rollup storage: minute partitions ahead, and each family's retention.

Minute rollups are partitioned by day like the call store (observatory.calls.partitions) and
dropped whole after ROLLUP_MINUTE_RETENTION_DAYS. Hour and day rows are few, so plain tables
trimmed by age are enough; they outlive raw calls (ROLLUP_RETENTION_DAYS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from observatory.calls.partitions import day_bounds, partitions_drop_before, partitions_ensure

MINUTE_TABLES = ("metrics_rollup_minute", "metrics_user_minute")
BUCKET_COLUMN = "bucket"


def minute_rows_from(*, today: date) -> datetime:
    """The oldest bucket for which minute rollups are kept."""
    return day_bounds(today - timedelta(days=settings.ROLLUP_MINUTE_RETENTION_DAYS))[0]


def user_hours_from(*, today: date) -> datetime:
    """The oldest bucket for which per-user hours are kept: as long as raw calls, so that
    per-user days can be rebuilt whenever a late call arrives, and a window's partial days
    need not be read from raw calls."""
    return day_bounds(today - timedelta(days=settings.RETENTION_DAYS))[0]


def rollups_from(*, today: date) -> datetime:
    return day_bounds(today - timedelta(days=settings.ROLLUP_RETENTION_DAYS))[0]


@dataclass
class RollupMaintenanceReport:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    rows_deleted: int = 0


def rollup_storage_maintain(*, today: date | None = None, using: str = DEFAULT_DB_ALIAS) -> RollupMaintenanceReport:
    """Create minute partitions ahead, drop expired ones, trim old hour and day rows.
    Safe to run at any time and any number of times."""
    today = today or timezone.now().astimezone(UTC).date()
    report = RollupMaintenanceReport()
    report.created = _minute_partitions_ensure(today=today, using=using)
    report.dropped = partitions_drop_before(
        day=today - timedelta(days=settings.ROLLUP_MINUTE_RETENTION_DAYS),
        using=using,
        tables=MINUTE_TABLES,
        column=BUCKET_COLUMN,
    )
    cutoffs = {
        "metrics_user_hour": user_hours_from(today=today),
        "metrics_rollup_hour": rollups_from(today=today),
        "metrics_rollup_day": rollups_from(today=today),
        "metrics_user_day": rollups_from(today=today),
    }
    with connections[using].cursor() as cursor:
        for table, cutoff in cutoffs.items():
            cursor.execute(f"DELETE FROM {table} WHERE bucket < %s", [cutoff])
            report.rows_deleted += cursor.rowcount
    return report


def _minute_partitions_ensure(*, today: date, using: str) -> list[str]:
    return partitions_ensure(
        first_day=today - timedelta(days=settings.ROLLUP_MINUTE_RETENTION_DAYS),
        last_day=today + timedelta(days=settings.PARTITIONS_AHEAD_DAYS),
        using=using,
        tables=MINUTE_TABLES,
        column=BUCKET_COLUMN,
    )


def create_partitions_after_migrate(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    if MINUTE_TABLES[0] not in connections[using].introspection.table_names():
        return  # migrated backwards, past the tables
    _minute_partitions_ensure(today=timezone.now().astimezone(UTC).date(), using=using)
