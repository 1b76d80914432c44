"""Hourly score rollups (ScoreHour), kept exact by statement triggers on calls_score, and
filled from the scores already stored.

One trigger per statement kind, because a trigger with transition tables serves one event:
an insert adds its new rows, an update (ON CONFLICT DO UPDATE: a score sent again) subtracts
its old rows and adds its new ones, a delete (retention) subtracts. Each statement is one
grouped upsert in key order, so concurrent writers lock rollup rows in the same order.
The trigger is created before the backfill in one transaction: creating it locks out score
writes until the migration commits, so no score is counted twice or missed.
"""

from django.db import migrations, models

# The rows of a statement as signed deltas of (count, value_count, value_sum, commented).
_DELTA = "SELECT {sign} AS sign, project_id, timestamp, name, data_type, value, string_value, comment FROM {table}"
_APPLY = """
INSERT INTO calls_scorehour AS h (project_id, hour, name, data_type, category, count, value_count, value_sum, commented)
SELECT project_id, date_trunc('hour', timestamp, 'UTC'), name, data_type,
       CASE WHEN data_type = 'categorical' THEN coalesce(string_value, '') ELSE '' END,
       sum(sign), coalesce(sum(sign) FILTER (WHERE value IS NOT NULL), 0), coalesce(sum(sign * value), 0),
       coalesce(sum(sign) FILTER (WHERE comment IS NOT NULL), 0)
FROM ({rows}) AS delta
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5
ON CONFLICT (project_id, hour, name, data_type, category) DO UPDATE SET
    count = h.count + EXCLUDED.count,
    value_count = h.value_count + EXCLUDED.value_count,
    value_sum = h.value_sum + EXCLUDED.value_sum,
    commented = h.commented + EXCLUDED.commented
"""
_SOURCES = {
    "insert": (("NEW TABLE AS new_rows",), [_DELTA.format(sign=1, table="new_rows")]),
    "update": (("OLD TABLE AS old_rows", "NEW TABLE AS new_rows"),
               [_DELTA.format(sign=-1, table="old_rows"), _DELTA.format(sign=1, table="new_rows")]),
    "delete": (("OLD TABLE AS old_rows",), [_DELTA.format(sign=-1, table="old_rows")]),
}


def _trigger(event: str) -> str:
    referencing, selects = _SOURCES[event]
    return f"""
CREATE FUNCTION calls_score_hours_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{_APPLY.format(rows=" UNION ALL ".join(selects)).strip()};
RETURN NULL;
END $$;
CREATE TRIGGER score_hours_{event} AFTER {event.upper()} ON calls_score
REFERENCING {" ".join(referencing)} FOR EACH STATEMENT EXECUTE FUNCTION calls_score_hours_{event}();
"""


_BACKFILL = _APPLY.format(rows=_DELTA.format(sign=1, table="calls_score"))
_DROP = "".join(
    f"DROP TRIGGER IF EXISTS score_hours_{event} ON calls_score; DROP FUNCTION IF EXISTS calls_score_hours_{event}();"
    for event in _SOURCES
)


class Migration(migrations.Migration):

    dependencies = [
        ("calls", "0013_score_summary_indexes"),
        ("tenancy", "0003_project_prices_changed_at"),
    ]

    operations = [
        migrations.CreateModel(
            name="ScoreHour",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("hour", models.DateTimeField()),
                ("name", models.TextField()),
                ("data_type", models.TextField(choices=[("numeric", "Numeric"), ("boolean", "Boolean"),
                                                        ("categorical", "Categorical"), ("text", "Text")])),
                ("category", models.TextField(default="")),
                ("count", models.BigIntegerField()),
                ("value_count", models.BigIntegerField()),
                ("value_sum", models.FloatField()),
                ("commented", models.BigIntegerField()),
                ("project", models.ForeignKey(db_constraint=False, db_index=False,
                                              on_delete=models.deletion.CASCADE, related_name="+",
                                              to="tenancy.project")),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("project", "hour", "name", "data_type", "category"),
                                                        name="scorehour_unique")],
            },
        ),
        migrations.RunSQL("".join(_trigger(event) for event in _SOURCES) + _BACKFILL, _DROP),
    ]
