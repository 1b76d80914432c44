from celery import shared_task
from django.conf import settings

from observatory.metrics.partitions import rollup_storage_maintain
from observatory.metrics.services import rollups_compute


@shared_task(name="observatory.metrics.tasks.rollups_compute")
def rollups_compute_task() -> dict:
    # Stop well before the next beat so runs do not pile up; whatever is left is next run's.
    report = rollups_compute(time_budget_seconds=max(5, settings.ROLLUP_INTERVAL_SECONDS * 3))
    return {"minutes": report.minutes, "batches": report.batches, "busy_projects": report.busy_projects}


@shared_task(name="observatory.metrics.tasks.rollup_storage_maintain")
def rollup_storage_maintain_task() -> dict:
    report = rollup_storage_maintain()
    return {"created": len(report.created), "dropped": len(report.dropped), "deleted": report.rows_deleted}
