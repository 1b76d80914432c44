from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "observatory.accounts"
    label = "accounts"
    verbose_name = "Accounts"
