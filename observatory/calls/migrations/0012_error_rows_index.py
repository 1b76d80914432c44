"""The errors-only index also carries each error's model and kind.

The Quality page's error-type breakdown groups a window's errors by type and model and skips
workflow spans that only failed because a call inside them did; with model and kind in the
index it reads the index alone (once autovacuum has marked the pages all-visible) instead of
one heap page per error row, which at 10 million calls was most of the page's time. The
trace list's errors filter walks the same (project_id, start_time, id) order as before.
Built partition by partition without blocking ingest, then the old index is dropped."""

from django.db import migrations

from observatory.calls.partitions import partitioned_index_create

OLD = ("calls_call_errors", "(project_id, start_time, id) INCLUDE (error_type) WHERE status = 'error'")
NEW = ("calls_call_error_rows", "(project_id, start_time, id) INCLUDE (error_type, model, kind) WHERE status = 'error'")


def _replace(schema_editor, *, build: tuple[str, str], drop: str) -> None:
    name, definition = build
    partitioned_index_create(table="calls_call", name=name, definition=definition, using=schema_editor.connection.alias)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {drop}")


def forwards(apps, schema_editor) -> None:
    _replace(schema_editor, build=NEW, drop=OLD[0])


def backwards(apps, schema_editor) -> None:
    _replace(schema_editor, build=OLD, drop=NEW[0])


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("calls", "0011_signal_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
