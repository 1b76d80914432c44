"""The score summary now reads hourly rollups (ScoreHour) and only a window's partial edge
hours from scores, through score_time_idx: the covering index it used to scan is dead weight
on every score write. Dropped concurrently so score ingest keeps going."""

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("calls", "0014_score_hours"),
    ]

    operations = [
        RemoveIndexConcurrently(model_name="score", name="score_summary_idx"),
    ]
