from celery import shared_task

from observatory.alerts.services import rules_evaluate
from observatory.task_budget import time_budget_seconds

EVALUATE_TIME_BUDGET_SECONDS = 45


@shared_task(name="observatory.alerts.tasks.rules_evaluate")
def rules_evaluate_task() -> dict:
    return rules_evaluate(time_budget_seconds=time_budget_seconds(EVALUATE_TIME_BUDGET_SECONDS))
