from django.contrib import admin

from observatory.notifications.models import Delivery, Notification


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ("channel", "recipient", "status", "attempts", "sent_at", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    # The history is written by evaluations only; the admin reads it.
    list_display = ("created_at", "project", "kind", "subject", "suppressed")
    list_filter = ("kind", "project")
    search_fields = ("subject", "key")
    readonly_fields = ("project", "key", "kind", "budget", "rule", "subject", "context", "suppressed", "created_at")
    inlines = (DeliveryInline,)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "project", "channel", "recipient", "status", "attempts", "sent_at")
    list_filter = ("status", "channel")
    readonly_fields = ("project", "notification", "channel", "recipient", "status", "attempts", "not_before",
                       "dispatched_at", "lease_until", "sent_at", "last_error", "created_at")

    def has_add_permission(self, request) -> bool:
        return False
