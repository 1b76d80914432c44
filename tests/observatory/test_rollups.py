"""The rollup job: each call counted once whatever happens to the job, late calls in their
own buckets, retention per family."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from observatory.calls.models import ChangedMinute
from observatory.calls.partitions import call_store_maintain
from observatory.calls.services import calls_write
from observatory.metrics import services
from observatory.metrics.models import RollupDay, RollupHour, RollupMinute, UserDay
from observatory.metrics.partitions import minute_rows_from, rollup_storage_maintain
from observatory.metrics.selectors import metrics_query
from observatory.metrics.services import rollups_compute, rollups_reset
from observatory.metrics.tasks import rollup_time_budget_seconds
from tests.metrics_helpers import raw_totals, roll_up, rollup_table_totals
from tests.records import record

TABLES = ("metrics_rollup_minute", "metrics_rollup_hour", "metrics_rollup_day")


def some_calls(project, *, minutes_ago: int = 30, count: int = 40):
    start = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    calls_write(project=project, records=[
        record(start_time=start + timedelta(seconds=17 * i), user_id=f"u{i % 3}", latency_ms=100.0 + i,
               status="error" if i % 10 == 0 else "ok", finish_reason=None if i % 10 == 0 else "stop")
        for i in range(count)
    ])


def assert_rollups_match_raw(project):
    far_future = datetime(2100, 1, 1, tzinfo=UTC)
    everything = raw_totals(project, datetime(2000, 1, 1, tzinfo=UTC), far_future)
    expected = (everything["count"], everything["cost"])
    for table in TABLES[1:]:
        assert rollup_table_totals(table, project) == expected, table
    # Minute rows exist for the last few days only.
    kept_from = minute_rows_from(today=datetime.now(UTC).date())
    recent = raw_totals(project, kept_from, far_future)
    assert rollup_table_totals(TABLES[0], project, since=kept_from) == (recent["count"], recent["cost"])
    # Every stored grouping of hours and days adds up to the same totals.
    for model in (RollupHour, RollupDay):
        for dims in model.objects.filter(project=project).values_list("dims", flat=True).distinct():
            assert rollup_table_totals(model._meta.db_table, project, dims) == expected
    assert rollup_table_totals("metrics_user_day", project, None) == expected


def test_job_run_twice_counts_each_call_once(project):
    some_calls(project)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT date_trunc('minute', start_time)) FROM calls_call WHERE project_id = %s",
                       [project.pk])
        minutes_with_calls = cursor.fetchone()[0]
    first = roll_up(project)
    assert first.minutes == minutes_with_calls
    assert roll_up(project).minutes == 0  # nothing left to do
    assert_rollups_match_raw(project)

    # Marking the same minutes again recomputes them to the same rows.
    rollups_reset(project=project)
    roll_up(project)
    assert_rollups_match_raw(project)


def test_answers_are_exact_before_the_job_has_run(project):
    some_calls(project, minutes_ago=90)
    end = datetime.now(UTC)
    query = {"project": project, "start": end - timedelta(hours=3), "end": end, "metrics": ["count", "cost"]}
    [before] = metrics_query(**query).rows  # from raw calls: their minutes are still marked
    roll_up(project)
    [after] = metrics_query(**query).rows  # from rollups
    totals = raw_totals(project, query["start"], end)
    assert before == after == {"count": totals["count"], "cost": totals["cost"]}


def test_new_calls_in_a_rolled_up_minute_replace_its_rows(project):
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    calls_write(project=project, records=[record(start_time=start + timedelta(seconds=1))])
    roll_up(project)
    calls_write(project=project, records=[record(start_time=start + timedelta(seconds=2))])
    roll_up(project)
    assert RollupMinute.objects.get(project=project, bucket=start).calls == 2
    assert_rollups_match_raw(project)


def test_job_killed_midway_rolls_back_its_claim_and_leaves_no_partial_rows(project, monkeypatch):
    some_calls(project)
    real = services._recompute

    def dies_after_the_first_family(cursor, *, family, **kwargs):
        if family is services.USER_FAMILY:
            raise RuntimeError("worker killed")
        return real(cursor, family=family, **kwargs)

    monkeypatch.setattr(services, "_recompute", dies_after_the_first_family)
    with pytest.raises(RuntimeError):
        roll_up(project)
    assert ChangedMinute.objects.filter(project=project).exists()  # the claim was rolled back
    assert not RollupMinute.objects.filter(project=project).exists()  # and so was the work

    monkeypatch.setattr(services, "_recompute", real)
    roll_up(project)
    assert not ChangedMinute.objects.filter(project=project).exists()
    assert_rollups_match_raw(project)


def test_a_run_leaves_minutes_marked_while_it_works_to_the_next_run(project, monkeypatch):
    """Under steady ingest the current minute is marked again during every batch. A run that
    chased those marks would never finish before its time budget (nor, where the budget reaches
    the task's soft time limit, without being interrupted and logged as failed)."""
    some_calls(project, minutes_ago=5, count=10)
    real = services.rollup_batch

    def ingest_meanwhile(**kwargs):
        report = real(**kwargs)
        calls_write(project=project, records=[record(start_time=datetime.now(UTC))])
        return report

    monkeypatch.setattr(services, "rollup_batch", ingest_meanwhile)
    report = rollups_compute(project_ids=[project.pk], time_budget_seconds=3)
    assert (report.batches, report.minutes) == (1, report.claimed)
    assert ChangedMinute.objects.filter(project=project).exists()  # the next run's

    monkeypatch.setattr(services, "rollup_batch", real)
    roll_up(project)
    assert_rollups_match_raw(project)


def test_a_full_batch_is_followed_by_the_next_one(project):
    some_calls(project, count=40)  # 40 calls 17 s apart: a dozen minutes
    report = rollups_compute(project_ids=[project.pk], batch_minutes=3)
    assert report.batches >= 4
    assert not ChangedMinute.objects.filter(project=project).exists()
    assert_rollups_match_raw(project)


@pytest.mark.parametrize(("interval", "soft_limit", "budget"), [(10, 240, 30), (1, 240, 5), (1, 5, 2.5), (60, 100, 50)])
def test_the_job_stops_itself_well_inside_its_soft_time_limit(settings, interval, soft_limit, budget):
    settings.ROLLUP_INTERVAL_SECONDS, settings.CELERY_TASK_SOFT_TIME_LIMIT = interval, soft_limit
    assert rollup_time_budget_seconds() == budget


@pytest.mark.parametrize(("soft_limit", "budget"), [(240, 45), (5, 2.5)])
def test_budget_and_rule_evaluations_also_stop_inside_the_soft_time_limit(settings, soft_limit, budget):
    from observatory.alerts import tasks as alert_tasks
    from observatory.budgets import tasks as budget_tasks
    from observatory.task_budget import time_budget_seconds

    settings.CELERY_TASK_SOFT_TIME_LIMIT = soft_limit
    assert time_budget_seconds(budget_tasks.EVALUATE_TIME_BUDGET_SECONDS) == budget
    assert time_budget_seconds(alert_tasks.EVALUATE_TIME_BUDGET_SECONDS) == budget


@pytest.mark.django_db(transaction=True)
def test_concurrent_jobs_count_each_call_once(project):
    some_calls(project, count=200)
    some_calls(project, minutes_ago=600, count=200)
    barrier = threading.Barrier(2)
    errors = []

    def job():
        try:
            barrier.wait()
            rollups_compute(batch_minutes=3)
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rollups_compute()  # whatever a skipped job left
    assert_rollups_match_raw(project)


@pytest.mark.django_db(transaction=True)
def test_calls_committed_while_their_minute_was_rolled_up_are_counted(project):
    """The minute is already marked; an ingest transaction writes calls and its own mark, the
    job claims and recomputes the minute before that ingest commits, then the ingest commits."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    calls_write(project=project, records=[record(start_time=minute + timedelta(seconds=1))])
    written, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow_ingest():
        try:
            with transaction.atomic():
                calls_write(project=project, records=[record(start_time=minute + timedelta(seconds=2))])
                written.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()
            finished.set()

    threading.Thread(target=slow_ingest).start()
    assert written.wait(timeout=30)
    rollups_compute()
    assert RollupMinute.objects.get(project=project, bucket=minute).calls == 1  # the other is not visible yet
    release.set()
    assert finished.wait(timeout=30)
    # The claim could only take committed marks: the late writer's own mark is still there.
    assert ChangedMinute.objects.filter(project=project, minute=minute).count() == 1

    rollups_compute()
    assert RollupMinute.objects.get(project=project, bucket=minute).calls == 2
    assert not ChangedMinute.objects.filter(project=project).exists()
    assert_rollups_match_raw(project)


def test_late_calls_land_in_the_buckets_they_belong_to(project):
    some_calls(project)
    roll_up(project)
    now = datetime.now(UTC)
    two_days_late = (now - timedelta(days=2)).replace(minute=13, second=5, microsecond=0)
    five_days_late = (now - timedelta(days=5)).replace(minute=41, second=9, microsecond=0)  # older than minute rows
    calls_write(project=project, records=[record(start_time=two_days_late, cost=Decimal("0.25"), user_id="late"),
                                          record(start_time=five_days_late, cost=Decimal("0.5"), user_id="late")])
    roll_up(project)

    assert RollupMinute.objects.get(project=project, bucket=two_days_late.replace(second=0)).calls == 1
    assert not RollupMinute.objects.filter(project=project, bucket=five_days_late.replace(second=0)).exists()
    for moment, cost in ((two_days_late, Decimal("0.25")), (five_days_late, Decimal("0.5"))):
        hour = RollupHour.objects.get(project=project, dims=0, bucket=moment.replace(minute=0, second=0))
        day = RollupDay.objects.get(project=project, dims=0, bucket=moment.replace(hour=0, minute=0, second=0))
        assert (hour.calls, hour.cost) == (1, cost)
        assert (day.calls, day.cost) == (1, cost)
        assert UserDay.objects.get(project=project, user_id="late",
                                   bucket=moment.replace(hour=0, minute=0, second=0)).cost == cost
    assert_rollups_match_raw(project)


def test_per_user_sums_match_raw_calls(project):
    some_calls(project, minutes_ago=200, count=90)
    roll_up(project)
    end = datetime.now(UTC)
    rows = metrics_query(project=project, start=end - timedelta(days=1), end=end, metrics=["count", "cost"],
                         group_by=["user_id"], order_by="-count").rows
    with connection.cursor() as cursor:
        cursor.execute("SELECT user_id, count(*), sum(cost) FROM calls_call WHERE project_id = %s "
                       "GROUP BY user_id ORDER BY 2 DESC, 1", [project.pk])
        expected = cursor.fetchall()
    assert [(row["user_id"], row["count"], row["cost"]) for row in rows] == expected


def test_rollups_outlive_raw_calls_and_minute_rows_expire_by_partition(project, settings):
    today = datetime.now(UTC).date()
    old = datetime.combine(today - timedelta(days=10), datetime.min.time(), tzinfo=UTC) + timedelta(hours=5)
    calls_write(project=project, records=[record(start_time=old)])
    roll_up(project)
    assert RollupHour.objects.filter(project=project, bucket=old).exists()

    settings.RETENTION_DAYS = 7  # the raw call is now past retention and goes
    call_store_maintain(today=today)
    assert raw_totals(project, old, old + timedelta(hours=1))["count"] == 0
    assert RollupHour.objects.filter(project=project, bucket=old).exists()
    assert RollupDay.objects.filter(project=project, bucket=old.replace(hour=0)).exists()

    settings.ROLLUP_RETENTION_DAYS = 9
    report = rollup_storage_maintain(today=today)
    assert report.rows_deleted > 0
    assert not RollupHour.objects.filter(project=project, bucket=old).exists()


def test_minute_partitions_are_dropped_whole_after_their_retention(project):
    today = datetime.now(UTC).date()
    from observatory.calls.partitions import partitions_ensure, partitions_existing

    old_day = today - timedelta(days=20)
    partitions_ensure(first_day=old_day, last_day=old_day, tables=("metrics_rollup_minute",), column="bucket")
    assert old_day in partitions_existing(table="metrics_rollup_minute")
    report = rollup_storage_maintain(today=today)
    assert f"metrics_rollup_minute_p{old_day:%Y%m%d}" in report.dropped
    existing = partitions_existing(table="metrics_rollup_minute")
    assert old_day not in existing and today in existing and today + timedelta(days=2) in existing
