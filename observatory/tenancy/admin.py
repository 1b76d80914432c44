from django.contrib import admin

from observatory.tenancy.models import ApiKey, Membership, Organization, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    inlines = (MembershipInline,)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "organization", "redaction_mode", "retention_days", "time_zone")
    list_filter = ("redaction_mode",)
    search_fields = ("slug", "name")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    # Keys are issued from the settings page or the CLI, where the secret is shown once.
    list_display = ("public_id", "name", "project", "secret_hint", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("public_id", "secret_hint", "secret_hash", "created_at", "last_used_at", "created_by")
    search_fields = ("public_id", "name")

    def has_add_permission(self, request) -> bool:
        return False
