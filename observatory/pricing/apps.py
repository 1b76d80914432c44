from django.apps import AppConfig


class PricingConfig(AppConfig):
    name = "observatory.pricing"
    label = "pricing"
    verbose_name = "Pricing"
