"""Partial indexes for the few calls that retried or fell back: the readiness scorecard looks
for calls past the allowed attempts and for failed fallbacks, and the Reliability page lists
fallbacks by primary and fallback model, without reading the calls that did neither. Built
partition by partition without blocking ingest (partitions.partitioned_index_create)."""

from django.db import migrations

from observatory.calls.partitions import partitioned_index_create

INDEXES = {
    "calls_call_retries": "(project_id, start_time) INCLUDE (attempt) WHERE attempt > 1",
    "calls_call_fallbacks": (
        "(project_id, start_time) INCLUDE (status) "
        "WHERE fallback_from_model IS NOT NULL OR fallback_from_provider IS NOT NULL"
    ),
}


def create(apps, schema_editor) -> None:
    for name, definition in INDEXES.items():
        partitioned_index_create(table="calls_call", name=name, definition=definition,
                                 using=schema_editor.connection.alias)


def drop(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("calls", "0010_trace_loop_flags")]

    operations = [migrations.RunPython(create, drop)]
