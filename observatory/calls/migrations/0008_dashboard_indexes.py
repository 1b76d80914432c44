"""Indexes the dashboards need to stay fast on tens of millions of calls.

The trace list filters by user or session (links from a trace page to the user's and the
session's other calls) and by errors; the latency page lists a window's slowest model calls.
Each is a partial index so that it holds only the rows it serves, and each is built
partition by partition without blocking ingest (partitions.partitioned_index_create), which is
why this migration is not atomic.
"""

from django.db import migrations, models

from observatory.calls.partitions import partitioned_index_create

# name -> definition on calls_call
INDEXES = {
    # Keyset order (start_time, id) within one user / session, as calls_list walks it.
    "calls_call_user_time": "(project_id, user_id, start_time, id) WHERE user_id IS NOT NULL",
    "calls_call_session_time": "(project_id, session_id, start_time, id) WHERE session_id IS NOT NULL",
    # About 2% of calls: the error list and the error-type breakdown read only these.
    "calls_call_errors": "(project_id, start_time, id) INCLUDE (error_type) WHERE status = 'error'",
    # Slowest model calls of a window: each day's partition yields its slowest first.
    "calls_call_model_latency": (
        "(project_id, latency_ms) WHERE kind IN ('generation', 'embedding') AND latency_ms IS NOT NULL"
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

    dependencies = [
        ("calls", "0007_changed_minute_without_project_index"),
        ("tenancy", "0003_project_prices_changed_at"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="score",
            index=models.Index(models.F("project"), models.OrderBy(models.F("timestamp"), descending=True),
                               name="score_time_idx"),
        ),
        migrations.RunPython(create, drop),
    ]
