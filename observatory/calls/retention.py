"""Retention for what daily partitions cannot drop: per-project limits and summary tables.

The deployment-wide RETENTION_DAYS drops whole partitions (partitions.py). A project may ask
to keep its raw calls for less time; those rows are deleted here. Trace summaries and scores
are not partitioned (a trace can span days and is updated in place) and are deleted by age.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from observatory.calls.models import Score, ScoreHour, Trace
from observatory.calls.partitions import day_bounds
from observatory.tenancy.models import Project


def project_retention_apply(*, today: date, using: str = DEFAULT_DB_ALIAS) -> int:
    """Delete what is older than each retention limit. Returns the number of rows deleted."""
    deleted = 0
    global_cutoff, _ = day_bounds(today - timedelta(days=settings.RETENTION_DAYS))
    deleted += Trace.objects.using(using).filter(end_time__lt=global_cutoff)._raw_delete(using)
    deleted += Score.objects.using(using).filter(timestamp__lt=global_cutoff)._raw_delete(using)
    # Emptied by the delete above (its trigger subtracts what it removes); not counted as data.
    ScoreHour.objects.using(using).filter(hour__lt=global_cutoff)._raw_delete(using)

    shorter = Project.objects.using(using).filter(retention_days__lt=settings.RETENTION_DAYS)
    for project_id, retention_days in shorter.values_list("id", "retention_days"):
        cutoff, _ = day_bounds(today - timedelta(days=retention_days))
        with connections[using].cursor() as cursor:
            for table in ("calls_callcontent", "calls_call"):
                cursor.execute(f"DELETE FROM {table} WHERE project_id = %s AND start_time < %s", [project_id, cutoff])
                deleted += cursor.rowcount
        deleted += Trace.objects.using(using).filter(project_id=project_id, end_time__lt=cutoff)._raw_delete(using)
        deleted += Score.objects.using(using).filter(project_id=project_id, timestamp__lt=cutoff)._raw_delete(using)
        ScoreHour.objects.using(using).filter(project_id=project_id, hour__lt=cutoff)._raw_delete(using)
    return deleted
