from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "observatory.metrics"
    label = "metrics"
    verbose_name = "Metrics and rollups"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from observatory.metrics.partitions import create_partitions_after_migrate

        # Minute rollups go to daily partitions; a fresh database needs today's before beat runs.
        post_migrate.connect(create_partitions_after_migrate, sender=self)
