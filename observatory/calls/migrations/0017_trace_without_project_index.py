"""calls_trace loses its index on project_id alone: the unique (project_id, trace_id) index
serves every lookup by project, and each new trace paid one more index insert for it."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('calls', '0016_call_ids_cached_per_connection'),
        ('tenancy', '0003_project_prices_changed_at'),
    ]

    operations = [
        migrations.AlterField(
            model_name='trace',
            name='project',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenancy.project'),
        ),
    ]
