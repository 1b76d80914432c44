from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "observatory.calls"
    label = "calls"
    verbose_name = "Call store"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # psycopg parses a query's placeholders on every execute unless the query is at most
        # 4096 characters, when it caches the result. The write path's statements are longer
        # and run for every ingest request, where parsing them cost 0.4 ms each.
        from psycopg import _queries

        _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, 16384)

        from observatory.calls.partitions import create_partitions_after_migrate

        # A fresh database can take calls as soon as it is migrated, before beat first runs.
        post_migrate.connect(create_partitions_after_migrate, sender=self)
