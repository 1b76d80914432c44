from django.contrib import admin

from observatory.budgets.models import Budget, DigestSubscription
from observatory.budgets.services import guard_forget


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "scope", "scope_value", "period", "amount", "hard_cap", "enabled", "spent",
                    "spent_at")
    list_filter = ("period", "scope", "hard_cap", "enabled")
    search_fields = ("name", "scope_value", "project__slug")
    readonly_fields = ("spent", "spent_period_start", "spent_at", "created_by", "created_at", "updated_at")

    # The guard caches hard caps; an edit here must reach it as one through the API does.
    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        guard_forget(project_id=obj.project_id)

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        guard_forget(project_id=obj.project_id)


@admin.register(DigestSubscription)
class DigestSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("project", "user", "created_at")
    autocomplete_fields = ("user",)
