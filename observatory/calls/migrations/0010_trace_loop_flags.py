"""Loop flags on trace summaries. The columns are nullable (no rewrite); the partial index is
built CONCURRENTLY so ingest, which updates trace summaries constantly, is never held up."""

import django.contrib.postgres.fields
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('calls', '0009_call_signals'),
        ('tenancy', '0003_project_prices_changed_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='trace',
            name='loop_flagged_at',
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name='trace',
            name='loop_reasons',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.TextField(), null=True, size=None),
        ),
        migrations.AddField(
            model_name='trace',
            name='repeated_prompts',
            field=models.IntegerField(null=True),
        ),
        AddIndexConcurrently(
            model_name='trace',
            index=models.Index(models.F('project'), models.OrderBy(models.F('loop_flagged_at'), descending=True), condition=models.Q(('loop_flagged_at__isnull', False)), name='trace_loops_idx'),
        ),
    ]
