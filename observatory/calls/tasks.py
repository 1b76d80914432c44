from celery import shared_task

from observatory.calls.partitions import call_store_maintain


@shared_task(name="observatory.calls.tasks.partitions_maintain")
def partitions_maintain() -> dict:
    report = call_store_maintain()
    return {"created": len(report.created), "dropped": len(report.dropped), "deleted": report.project_rows_deleted}
