"""Safety-net measures on every rollup table (observatory.metrics.signals). The default of 0
is correct for rows rolled up before: their calls carried no signals. PostgreSQL adds a
column with a constant default without rewriting the table or its partitions."""

from django.db import migrations, models

TABLES = ("rollupminute", "rolluphour", "rollupday", "userminute", "userhour", "userday")
COUNTS = ("cache_hits", "semantic_cache_hits", "retries", "fallbacks", "failed_fallbacks", "rate_limited",
          "server_errors", "timeouts", "input_blocked", "output_flagged", "filter_checked", "max_tokens_set",
          "timeout_set", "streamed_calls")


def field(name):
    if name == "cache_saved_cost":
        return models.DecimalField(decimal_places=12, default=0, max_digits=30)
    return models.BigIntegerField(default=0)


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0002_append_only_changed_minutes"),
    ]

    operations = [
        migrations.AddField(model_name=table, name=name, field=field(name))
        for table in TABLES
        for name in (*COUNTS, "cache_saved_cost")
    ]
