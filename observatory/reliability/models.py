"""Per-project limits for loop detection and thresholds for the readiness scorecard.

A project without a row uses the defaults below (selectors.reliability_settings_get), so the
scorecard and loop detection work from the first call; a row exists once someone edits them.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from observatory.tenancy.models import Project

PERCENT = [MinValueValidator(0), MaxValueValidator(100)]


def _percent(default: str, help_text: str) -> models.DecimalField:
    return models.DecimalField(max_digits=5, decimal_places=2, default=Decimal(default), validators=PERCENT,
                               help_text=help_text)


class ReliabilitySettings(models.Model):
    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="reliability_settings")

    # A trace is a runaway loop once it passes any of these while it runs.
    loop_max_spans = models.PositiveIntegerField(
        default=200, validators=[MinValueValidator(2), MaxValueValidator(1_000_000)],
        help_text="Spans in one trace.")
    loop_max_cost = models.DecimalField(
        max_digits=12, decimal_places=4, default=Decimal("5"), validators=[MinValueValidator(Decimal("0.0001"))],
        help_text="USD spent by one trace.")
    loop_max_repeats = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(2), MaxValueValidator(100_000)],
        help_text="Times one identical prompt is sent within the window.")
    loop_window_minutes = models.PositiveIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text="How far back identical prompts are counted.")

    # Readiness scorecard. "At least" items pass at the threshold and warn down to 80 % of it;
    # "at most" items pass at the threshold and warn up to twice it (scorecard.py).
    min_max_tokens_share = _percent("99", "Model calls that set max_tokens, at least (%).")
    max_length_share = _percent("2", "Calls stopped at max tokens (finish_reason=length), at most (%).")
    stream_after_ms = models.PositiveIntegerField(
        default=2000, validators=[MinValueValidator(1)],
        help_text="A feature whose median latency is this long (ms) makes users wait: it should stream.")
    min_streamed_share = _percent("90", "Calls streamed in such features, at least (%).")
    min_timeout_share = _percent("99", "Model calls with a timeout configured, at least (%).")
    max_attempts = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Attempts of one call, the first included, at most.")
    max_retry_share = _percent("10", "Calls that are retries, at most (%).")
    min_fallback_success = _percent("90", "Fallback calls that succeed, at least (%).")
    latency_budget_ms = models.PositiveIntegerField(
        default=10_000, validators=[MinValueValidator(1)], help_text="P99 latency of model calls, at most (ms).")
    max_error_rate = _percent("2", "Model calls that fail, at most (%).")
    min_prompt_version_share = _percent("95", "Model calls naming their prompt and its version, at least (%).")
    min_content_filter_share = _percent("95", "Model calls checked by a content filter, at least (%).")

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "reliability settings"

    def __str__(self) -> str:
        return f"Reliability settings of {self.project}"


LOOP_LIMITS = ("loop_max_spans", "loop_max_cost", "loop_max_repeats", "loop_window_minutes")
THRESHOLDS = ("min_max_tokens_share", "max_length_share", "stream_after_ms", "min_streamed_share",
              "min_timeout_share", "max_attempts", "max_retry_share", "min_fallback_success", "latency_budget_ms",
              "max_error_rate", "min_prompt_version_share", "min_content_filter_share")
EDITABLE = LOOP_LIMITS + THRESHOLDS
