"""The Celery app, configured from Django settings, and every periodic schedule."""

from __future__ import annotations

import logging.config
import os
from pathlib import Path

from celery import Celery, signals
from celery.schedules import crontab

from observatory import request_id, worker_memory
from observatory.health.worker import connect_worker_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")

app = Celery("observatory")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every periodic job, in one place. Each task is idempotent, so a beat that fires twice
# (or two beats during a deploy) costs work, never correctness.
app.conf.beat_schedule = {
    "partitions-maintain": {
        "task": "observatory.calls.tasks.partitions_maintain",
        "schedule": crontab(minute=7),
    },
    # Every ROLLUP_INTERVAL_SECONDS (set below, once Django's settings are loaded).
    "rollups-compute": {"task": "observatory.metrics.tasks.rollups_compute"},
    "rollup-storage-maintain": {
        "task": "observatory.metrics.tasks.rollup_storage_maintain",
        "schedule": crontab(minute=17),
    },
    # Budgets and alert rules every minute; a run that waited a whole minute is superseded.
    "budgets-evaluate": {
        "task": "observatory.budgets.tasks.budgets_evaluate",
        "schedule": crontab(),
        "options": {"expires": 60},
    },
    "alert-rules-evaluate": {
        "task": "observatory.alerts.tasks.rules_evaluate",
        "schedule": crontab(),
        "options": {"expires": 60},
    },
    # Every BUDGET_GUARD_REFRESH_SECONDS (set below): the spend the guard endpoint answers from.
    "budget-guards-refresh": {"task": "observatory.budgets.tasks.budget_guards_refresh"},
    # Runaway loops are flagged while they still run; the loop alert rule reads the flags.
    "loops-detect": {
        "task": "observatory.reliability.tasks.loops_detect",
        "schedule": crontab(),
        "options": {"expires": 60},
    },
    # Retries of failed emails and webhooks, and deliveries whose job was lost.
    "notifications-dispatch": {
        "task": "observatory.notifications.tasks.notifications_dispatch",
        "schedule": crontab(),
        "options": {"expires": 60},
    },
    # Hourly: each project's digest goes out in the first run after SPEND_DIGEST_HOUR, local time.
    "spend-digests-send": {
        "task": "observatory.budgets.tasks.spend_digests_send",
        "schedule": crontab(minute=3),
    },
}


@app.on_after_configure.connect
def _create_file_broker_folders(sender: Celery, **kwargs: object) -> None:
    """The file-system broker used when no CELERY_BROKER_URL is set needs its folders."""
    options = sender.conf.broker_transport_options or {}
    if not str(sender.conf.broker_url).startswith("filesystem://"):
        return
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


# --- Logging and metrics in workers and beat --------------------------------------------
# Connecting setup_logging tells Celery to leave logging alone, so workers and beat write the
# same lines as the web (JSON in production, with the request id and the task id).
@signals.setup_logging.connect
def _use_django_logging(**kwargs: object) -> None:
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


signals.before_task_publish.connect(request_id.task_publish_add_request_id, weak=False)
signals.task_prerun.connect(request_id.task_prerun_set_request_id, weak=False)
signals.task_postrun.connect(request_id.task_postrun_clear_request_id, weak=False)
connect_worker_signals()
worker_memory.connect_worker_signals()


@app.on_after_configure.connect
def _schedule_rollups(sender: Celery, **kwargs: object) -> None:
    """The rollup and guard intervals are Django settings, and settings cannot be read when this module
    is imported (observatory/__init__.py imports it before they load)."""
    from django.conf import settings

    for name, seconds in (("rollups-compute", settings.ROLLUP_INTERVAL_SECONDS),
                          ("budget-guards-refresh", settings.BUDGET_GUARD_REFRESH_SECONDS)):
        entry = sender.conf.beat_schedule[name]
        entry["schedule"] = seconds
        # A run that waited longer than a few intervals is superseded by a newer one.
        entry["options"] = {"expires": seconds * 3}
