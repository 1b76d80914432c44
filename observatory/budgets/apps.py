from django.apps import AppConfig


class BudgetsConfig(AppConfig):
    name = "observatory.budgets"
    label = "budgets"
    verbose_name = "Budgets"
