from django.contrib import admin

from observatory.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    # The audit log is append-only: readable here, never edited.
    list_display = ("created_at", "organization", "action", "target", "actor_email")
    list_filter = ("action",)
    search_fields = ("target", "actor_email")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
