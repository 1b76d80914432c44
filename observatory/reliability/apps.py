from django.apps import AppConfig


class ReliabilityConfig(AppConfig):
    name = "observatory.reliability"
    label = "reliability"
    verbose_name = "Reliability: loops and production readiness"
