from celery import shared_task

from observatory.reliability.loops import loops_detect_all

# Stop well before the next run.
DETECT_TIME_BUDGET_SECONDS = 45


@shared_task(name="observatory.reliability.tasks.loops_detect")
def loops_detect_task() -> dict:
    report = loops_detect_all(time_budget_seconds=DETECT_TIME_BUDGET_SECONDS)
    return {"projects": report.projects, "failed": report.failed, "flagged": report.flagged}
