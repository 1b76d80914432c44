from celery import shared_task

from observatory.budgets.digest import spend_digests_send
from observatory.budgets.services import budget_guards_refresh, budgets_evaluate
from observatory.task_budget import time_budget_seconds

# Stop well before the next run; budgets left over are evaluated first next time.
EVALUATE_TIME_BUDGET_SECONDS = 45


@shared_task(name="observatory.budgets.tasks.budgets_evaluate")
def budgets_evaluate_task() -> dict:
    report = budgets_evaluate(time_budget_seconds=time_budget_seconds(EVALUATE_TIME_BUDGET_SECONDS))
    return {"evaluated": report.evaluated, "failed": report.failed, "notifications": report.notifications}


@shared_task(name="observatory.budgets.tasks.budget_guards_refresh")
def budget_guards_refresh_task() -> dict:
    return {"refreshed": budget_guards_refresh()}


@shared_task(name="observatory.budgets.tasks.spend_digests_send")
def spend_digests_send_task() -> dict:
    return {"sent": spend_digests_send()}
