"""The dashboards' partial indexes exist on every partition, valid, including ones made later."""

from __future__ import annotations

from datetime import date, timedelta

from django.db import connection

from observatory.calls.partitions import partitioned_index_create, partitions_ensure

INDEXES = ("calls_call_user_time", "calls_call_session_time", "calls_call_error_rows", "calls_call_model_latency")


def attached(index: str) -> tuple[set[str], bool]:
    """The partitions whose index is attached to `index`, and whether all of them are valid."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, i.indisvalid FROM pg_inherits h
            JOIN pg_index i ON i.indexrelid = h.inhrelid
            JOIN pg_class t ON t.oid = i.indrelid
            WHERE h.inhparent = to_regclass(%s)
            """,
            [index],
        )
        rows = cursor.fetchall()
    return {name for name, _ in rows}, all(valid for _, valid in rows)


def partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid "
                       "WHERE h.inhparent = 'calls_call'::regclass")
        return {row[0] for row in cursor.fetchall()}


def parent_valid(index: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [index])
        return cursor.fetchone()[0]


def test_every_partition_has_each_index_and_the_parents_are_valid(db):
    for index in INDEXES:
        names, valid = attached(index)
        assert names == partitions() and valid and parent_valid(index)
    assert attached("calls_call_errors")[0] == set()  # replaced by calls_call_error_rows


def test_partitions_created_later_get_the_indexes(db):
    far = date.today() + timedelta(days=200)
    partitions_ensure(first_day=far, last_day=far)
    for index in INDEXES:
        assert f"calls_call_p{far:%Y%m%d}" in attached(index)[0]


def test_building_an_index_again_changes_nothing(transactional_db):
    before = attached("calls_call_error_rows")
    partitioned_index_create(table="calls_call", name="calls_call_error_rows", definition=(
        "(project_id, start_time, id) INCLUDE (error_type, model, kind) WHERE status = 'error'"))
    assert attached("calls_call_error_rows") == before and parent_valid("calls_call_error_rows")
