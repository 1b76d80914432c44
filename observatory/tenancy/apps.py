from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "observatory.tenancy"
    label = "tenancy"
    verbose_name = "Organizations and projects"
