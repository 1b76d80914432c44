from celery import shared_task
from django.conf import settings

from observatory.metrics.partitions import rollup_storage_maintain
from observatory.metrics.services import rollups_compute
from observatory.task_budget import time_budget_seconds


def rollup_time_budget_seconds() -> float:
    """Long enough for a backlog to shrink, short enough that runs do not pile up behind each
    other, and well inside the task's soft time limit."""
    return time_budget_seconds(max(5, settings.ROLLUP_INTERVAL_SECONDS * 3))


@shared_task(name="observatory.metrics.tasks.rollups_compute")
def rollups_compute_task() -> dict:
    report = rollups_compute(time_budget_seconds=rollup_time_budget_seconds())
    return {"minutes": report.minutes, "batches": report.batches, "busy_projects": report.busy_projects}


@shared_task(name="observatory.metrics.tasks.rollup_storage_maintain")
def rollup_storage_maintain_task() -> dict:
    report = rollup_storage_maintain()
    return {"created": len(report.created), "dropped": len(report.dropped), "deleted": report.rows_deleted}
