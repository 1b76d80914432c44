from datetime import UTC, date, datetime, timedelta

from django.db import connection

from observatory.calls.models import Call, Score, Trace
from observatory.calls.partitions import (
    call_store_maintain,
    partition_name,
    partitions_drop_before,
    partitions_ensure,
    partitions_existing,
)
from observatory.calls.services import calls_write
from tests.records import record


def rows_in(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def test_migrate_created_partitions_for_the_ingest_window_and_days_ahead(db, settings):
    today = datetime.now(UTC).date()
    for table in ("calls_call", "calls_callcontent"):
        days = partitions_existing(table=table)
        assert today in days and today + timedelta(days=settings.PARTITIONS_AHEAD_DAYS) in days
        assert today - timedelta(days=min(settings.RETENTION_DAYS, settings.INGEST_MAX_PAST_DAYS)) in days


def test_a_call_lands_in_its_days_partition(project):
    start = datetime.now(UTC)
    calls_write(project=project, records=[record(start_time=start, input=["hi"])])
    assert rows_in(partition_name("calls_call", start.date())) == 1
    assert rows_in(partition_name("calls_callcontent", start.date())) == 1
    assert rows_in("calls_call_default") == 0


def test_ensure_moves_rows_out_of_the_default_partition(project):
    far = date(2031, 3, 14)
    start = datetime(2031, 3, 14, 12, tzinfo=UTC)
    calls_write(project=project, records=[record(start_time=start, input=["kept"])])
    assert rows_in("calls_call_default") == 1  # no partition for that day yet: nothing refused

    created = partitions_ensure(first_day=far, last_day=far)

    assert created == [partition_name("calls_call", far), partition_name("calls_callcontent", far)]
    assert rows_in("calls_call_default") == rows_in("calls_callcontent_default") == 0
    assert rows_in(partition_name("calls_call", far)) == rows_in(partition_name("calls_callcontent", far)) == 1
    assert partitions_ensure(first_day=far, last_day=far) == []  # idempotent


def test_retention_drops_whole_old_partitions_and_keeps_recent_ones(project):
    old_day = datetime.now(UTC).date() - timedelta(days=200)
    partitions_ensure(first_day=old_day, last_day=old_day)
    old = datetime.combine(old_day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=3)
    calls_write(project=project, records=[record(start_time=old), record(start_time=datetime.now(UTC))])

    dropped = partitions_drop_before(day=old_day + timedelta(days=1))

    assert partition_name("calls_call", old_day) in dropped
    assert old_day not in partitions_existing(table="calls_call")
    assert Call.objects.count() == 1


def test_maintenance_applies_global_and_per_project_retention(project, outsider, settings):
    settings.RETENTION_DAYS = 30
    now = datetime.now(UTC)
    project.retention_days = 7
    project.save()
    ten_days_ago = now - timedelta(days=10)
    calls_write(project=project, records=[record(start_time=ten_days_ago), record(start_time=now)])
    calls_write(project=outsider.project, records=[record(start_time=ten_days_ago)])
    Score.objects.create(project=project, score_id="s1", trace_id="t", name="helpful", data_type="boolean",
                         value=1, timestamp=now - timedelta(days=45))

    report = call_store_maintain()

    # The project keeping 7 days lost its 10-day-old call and trace; the other project kept its.
    assert Call.objects.filter(project=project).count() == 1
    assert Trace.objects.filter(project=project).count() == 1
    assert Call.objects.filter(project=outsider.project).count() == 1
    assert not Score.objects.exists()
    assert report.project_rows_deleted >= 3
    # Running it again changes nothing.
    assert call_store_maintain().project_rows_deleted == 0
