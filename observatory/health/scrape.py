"""Metrics read from PostgreSQL and the broker when Prometheus scrapes, not counted in-process.

They describe shared state (how far rollups are behind, how many jobs wait), so every web
process reports the same value and nothing needs to be kept in sync between processes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, Min
from django.db.models.functions import Now
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from observatory.calls.models import ChangedMinute
from observatory.health.checks import broker_connection, queue_depths

logger = logging.getLogger(__name__)


def rollup_backlog() -> tuple[int, float]:
    """(minutes waiting for rollup, age in seconds of the oldest), by the database's clock."""
    found = ChangedMinute.objects.aggregate(
        pending=Count("minute"),
        oldest=ExpressionWrapper(Now() - Min("marked_at"), output_field=DurationField()),
    )
    return found["pending"], found["oldest"].total_seconds() if found["oldest"] else 0.0


def celery_queue_names() -> list[str]:
    from observatory.celery import app

    return sorted(app.amqp.queues.keys())


class ScrapeCollector(Collector):
    def describe(self) -> list[Metric]:
        return []  # registering must not query anything; collect() does, per scrape

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "observatory_dependency_up", "1 when the dependency answered this scrape.", labels=["dependency"]
        )
        try:
            pending, lag = rollup_backlog()
        except Exception as error:
            logger.warning("metrics: cannot read the rollup backlog: %s", error)
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            yield GaugeMetricFamily(
                "observatory_rollup_lag_seconds",
                "Age of the oldest changed minute not yet rolled up (0 when rollups are current).",
                value=lag,
            )
            yield GaugeMetricFamily(
                "observatory_rollup_pending_minutes", "Project-minutes waiting to be rolled up.", value=pending
            )
        try:
            with broker_connection(timeout=settings.HEALTH_CHECK_TIMEOUT) as connection:
                depths = queue_depths(connection=connection, queues=celery_queue_names())
        except Exception as error:
            logger.warning("metrics: cannot read Celery queue depths: %s", error)
            up.add_metric(["broker"], 0)
        else:
            up.add_metric(["broker"], 1)
            family = GaugeMetricFamily(
                "observatory_celery_queue_depth", "Celery messages waiting in each queue.", labels=["queue"]
            )
            for queue, depth in depths.items():
                family.add_metric([queue], depth)
            yield family
        yield up
