"""A project's own prices, for negotiated rates, fine-tuned or self-hosted models."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from observatory.tenancy.models import Project


def validate_model_pattern(value: str) -> None:
    try:
        re.compile(value)
    except re.error as error:
        raise ValidationError(f"{value!r} is not a valid regular expression: {error}.") from None


# $100,000 per million tokens is far above any model's price, and keeps the cost of the largest
# call accepted (MAX_TOKENS of each kind) inside the calls' cost column.
RATE_LIMITS = [MinValueValidator(0), MaxValueValidator(100_000)]


class PriceOverride(models.Model):
    """Prices in USD per million tokens for models whose name fully matches `model_pattern`
    (a regular expression, e.g. `gpt-4o(-2024-.*)?` or `ft:.*`), from `effective_from` on.
    The newest effective override wins; it takes precedence over the catalogue."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="price_overrides")
    model_pattern = models.CharField(max_length=200, validators=[validate_model_pattern])
    provider = models.CharField(max_length=64, blank=True, help_text="Empty matches any provider.")
    input_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, validators=RATE_LIMITS)
    cached_input_per_mtok = models.DecimalField(
        max_digits=14, decimal_places=6, null=True, blank=True, validators=RATE_LIMITS,
        help_text="Empty: cached input tokens cost the input price.",
    )
    cache_write_per_mtok = models.DecimalField(
        max_digits=14, decimal_places=6, null=True, blank=True, validators=RATE_LIMITS,
        help_text="Empty: cache writes cost the input price.",
    )
    output_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, validators=RATE_LIMITS)
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-effective_from", "-id"]
        indexes = [models.Index(fields=["project", "-effective_from"], name="price_override_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.model_pattern} from {self.effective_from:%Y-%m-%d}"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        self._mark_project_prices_changed()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        self._mark_project_prices_changed()
        return result

    def _mark_project_prices_changed(self) -> None:
        Project.objects.filter(pk=self.project_id).update(prices_changed_at=timezone.now())
