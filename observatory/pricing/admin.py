from django.contrib import admin

from observatory.pricing.models import PriceOverride


@admin.register(PriceOverride)
class PriceOverrideAdmin(admin.ModelAdmin):
    list_display = ("project", "model_pattern", "provider", "input_per_mtok", "output_per_mtok", "effective_from")
    list_filter = ("project",)
    search_fields = ("model_pattern",)
