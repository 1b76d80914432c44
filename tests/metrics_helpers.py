"""Helpers for metrics tests: write calls at chosen times and compare with raw SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection

from observatory.calls.services import calls_write
from observatory.metrics.services import rollups_compute
from tests.records import record

MODEL_KINDS_SQL = "kind IN ('generation', 'embedding')"


def write(project, **fields):
    return calls_write(project=project, records=[record(**fields)])


def raw_totals(project, start: datetime, end: datetime) -> dict:
    """Exact sums straight from calls_call, to compare rollups with."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*), count(*) FILTER (WHERE status = 'error'), coalesce(sum(input_tokens), 0),
                   coalesce(sum(output_tokens), 0), coalesce(sum(total_tokens), 0), coalesce(sum(cost), 0),
                   count(*) FILTER (WHERE cost IS NULL)
            FROM calls_call WHERE project_id = %s AND {MODEL_KINDS_SQL} AND start_time >= %s AND start_time < %s
            """,
            [project.pk, start, end],
        )
        row = cursor.fetchone()
    keys = ("count", "errors", "input_tokens", "output_tokens", "total_tokens", "cost", "unpriced_count")
    return dict(zip(keys, [int(v) if k != "cost" else Decimal(v) for k, v in zip(keys, row)]))


def rollup_table_totals(table: str, project, dims: int | None = 255,
                        since: datetime | None = None) -> tuple[int, Decimal]:
    with connection.cursor() as cursor:
        condition = "" if dims is None else f" AND dims = {dims}"
        cursor.execute(f"SELECT coalesce(sum(calls), 0), coalesce(sum(cost), 0) FROM {table} "
                       f"WHERE project_id = %s AND bucket >= %s{condition}",
                       [project.pk, since or datetime(2000, 1, 1, tzinfo=UTC)])
        calls, cost = cursor.fetchone()
    return int(calls), Decimal(cost)


def roll_up(project=None, *, today=None):
    """The rollup job, for `project` (default: all); `today` (default: the real date) decides
    which minute rows are still kept, so a test set on a fixed date passes it."""
    return rollups_compute(project_ids=None if project is None else [project.pk], today=today)


ROLLUP_TOTALS = (("metrics_rollup_minute", 255), ("metrics_rollup_hour", 0), ("metrics_rollup_day", 0))


def rollups_versus_raw(project_id: int) -> dict[str, tuple]:
    """(calls, input tokens, output tokens, cost) of a project's model calls, from the raw call
    store and from each rollup table's all-dimension rows, over all time: equal once the
    rollup job has caught up."""
    totals = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
            f"coalesce(sum(cost), 0) FROM calls_call WHERE project_id = %s AND {MODEL_KINDS_SQL}",
            [project_id],
        )
        totals["raw"] = tuple(cursor.fetchone())
        for table, dims in ROLLUP_TOTALS:
            cursor.execute(
                f"SELECT coalesce(sum(calls), 0), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
                f"coalesce(sum(cost), 0) FROM {table} WHERE project_id = %s AND dims = %s",
                [project_id, dims],
            )
            totals[table] = tuple(cursor.fetchone())
    return {name: (int(c), int(i), int(o), Decimal(cost)) for name, (c, i, o, cost) in totals.items()}


def rollups_caught_up(project_id: int) -> bool:
    from observatory.calls.models import ChangedMinute

    if ChangedMinute.objects.filter(project_id=project_id).exists():
        return False
    return len(set(rollups_versus_raw(project_id).values())) == 1
