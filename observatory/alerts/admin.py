from django.contrib import admin

from observatory.alerts.models import AlertRule, AlertRuleChange


class AlertRuleChangeInline(admin.TabularInline):
    model = AlertRuleChange
    extra = 0
    can_delete = False
    fields = ("created_at", "from_state", "to_state", "value", "notified")
    readonly_fields = fields
    ordering = ("-created_at",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "kind", "state", "state_changed_at", "muted_until", "enabled")
    list_filter = ("kind", "state", "enabled")
    search_fields = ("name", "project__slug")
    readonly_fields = ("state", "state_changed_at", "last_value", "last_evaluated_at", "last_notified_at",
                       "created_by", "created_at", "updated_at")
    inlines = (AlertRuleChangeInline,)
