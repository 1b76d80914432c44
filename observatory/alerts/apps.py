from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "observatory.alerts"
    label = "alerts"
    verbose_name = "Alert rules"
