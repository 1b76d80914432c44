"""Indexes that let the Quality page summarise a window's scores from the index alone: count
and mean per score name, and how many carry a comment. Built concurrently so score ingest
keeps going while they are made."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("calls", "0012_error_rows_index"),
        ("tenancy", "0003_project_prices_changed_at"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="score",
            index=models.Index(fields=["project", "timestamp"], include=("name", "data_type", "value"),
                               name="score_summary_idx"),
        ),
        AddIndexConcurrently(
            model_name="score",
            index=models.Index(condition=models.Q(("comment__isnull", False)), fields=["project", "timestamp"],
                               include=("name", "data_type"), name="score_commented_idx"),
        ),
    ]
