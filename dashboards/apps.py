from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    name = "dashboards"
    verbose_name = "Dashboards"

    def ready(self) -> None:
        import dashboards.api.schema  # noqa: F401  (registers the schema's auth extension)
