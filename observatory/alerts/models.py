"""Alert rules on metrics over a sliding window, and the record of their state changes.

A rule is OK, FIRING or RESOLVED (it was firing and no longer is). People are told on
transitions only, again every `renotify_minutes` while it keeps firing, and not at all while
muted; every transition is a row in AlertRuleChange, told or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from observatory.budgets.models import Watch
from observatory.budgets.scopes import ScopeKind
from observatory.metrics.models import SUM_COST_DIGITS
from observatory.tenancy.models import Project

MAX_WINDOW_MINUTES = 24 * 60
MAX_BASELINE_HOURS = 7 * 24
VALUE_PLACES = 6


class RuleKind(models.TextChoices):
    LATENCY = "latency", "Latency percentile above a number of ms"
    ERROR_RATE = "error_rate", "Error rate above a percentage"
    LENGTH_SHARE = "length_share", "Share of calls stopped at max tokens (finish_reason=length) above a percentage"
    SPEND = "spend", "Spend in the window above an amount of USD"
    RUNAWAY = "runaway", "A user's, feature's or trace's spend above K times its own baseline"
    LOOP = "loop", "Traces flagged as runaway loops in the window, at least a number"
    CACHE_HIT_RATE = "cache_hit_rate", "Cache hit rate below a percentage"
    RETRY_RATE = "retry_rate", "Share of calls that are retries above a percentage"
    FALLBACK_RATE = "fallback_rate", "Share of calls served by a fallback above a percentage"
    RATE_LIMIT_RATE = "rate_limit_rate", "Share of calls the provider answered 429 above a percentage"
    SERVER_ERROR_RATE = "server_error_rate", "Share of calls the provider answered 5xx above a percentage"
    TIMEOUT_RATE = "timeout_rate", "Share of calls that timed out above a percentage"
    CONTENT_FILTER_RATE = "content_filter_rate", "Share of calls a content filter blocked or flagged above a percentage"


class RuleState(models.TextChoices):
    OK = "ok"
    FIRING = "firing"
    RESOLVED = "resolved"


class Percentile(models.TextChoices):
    P50 = "p50"
    P90 = "p90"
    P95 = "p95"
    P99 = "p99"


class RunawayDimension(models.TextChoices):
    USER = "user"
    FEATURE = "feature"
    TRACE = "trace"


@dataclass(frozen=True)
class SignalRate:
    """A safety-net rate watched by a rule: a metric of the metrics engine, in percent."""

    metric: str
    what: str  # for messages: "<what> over the last 5 min: 12.0% of 300 calls"
    below: bool = False  # breached when the rate falls below the threshold, not above it


SIGNAL_RATE_KINDS: dict[str, SignalRate] = {
    RuleKind.CACHE_HIT_RATE: SignalRate("cache_hit_rate", "cache hit rate", below=True),
    RuleKind.RETRY_RATE: SignalRate("retry_rate", "share of calls that are retries"),
    RuleKind.FALLBACK_RATE: SignalRate("fallback_rate", "share of calls served by a fallback"),
    RuleKind.RATE_LIMIT_RATE: SignalRate("rate_limit_rate", "share of calls rate-limited (429)"),
    RuleKind.SERVER_ERROR_RATE: SignalRate("server_error_rate", "share of calls answered 5xx"),
    RuleKind.TIMEOUT_RATE: SignalRate("timeout_rate", "share of calls that timed out"),
    RuleKind.CONTENT_FILTER_RATE: SignalRate("content_filter_rate", "share of calls blocked or flagged by a filter"),
}
_RATE_SCOPES = (ScopeKind.PROJECT, ScopeKind.MODEL, ScopeKind.PROVIDER, ScopeKind.FEATURE, ScopeKind.ENVIRONMENT,
                ScopeKind.USER)

# Scopes each kind can be read for: per-user rollups hold sums only, and tags are in no rollup.
KIND_SCOPES: dict[str, tuple[str, ...]] = {
    RuleKind.LATENCY: (ScopeKind.PROJECT, ScopeKind.MODEL, ScopeKind.PROVIDER, ScopeKind.FEATURE,
                       ScopeKind.ENVIRONMENT),
    RuleKind.LENGTH_SHARE: (ScopeKind.PROJECT, ScopeKind.MODEL, ScopeKind.PROVIDER, ScopeKind.FEATURE,
                            ScopeKind.ENVIRONMENT),
    RuleKind.ERROR_RATE: _RATE_SCOPES,
    RuleKind.SPEND: tuple(ScopeKind.values),
    RuleKind.RUNAWAY: (ScopeKind.PROJECT,),
    RuleKind.LOOP: (ScopeKind.PROJECT,),
    **{kind: _RATE_SCOPES for kind in SIGNAL_RATE_KINDS},
}
PERCENT_KINDS = (RuleKind.ERROR_RATE, RuleKind.LENGTH_SHARE, *SIGNAL_RATE_KINDS)


class AlertRule(Watch):
    EDITABLE = (*Watch.EDITABLE, "kind", "window_minutes", "percentile", "threshold", "min_calls", "dimension",
                "factor", "baseline_hours", "min_spend", "renotify_minutes", "muted_until")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=24, choices=RuleKind.choices)
    window_minutes = models.PositiveIntegerField(default=5)
    # latency: which percentile; threshold in ms. error_rate, length_share and the signal
    # rates: threshold in %. spend: threshold in USD. loop: how many flagged traces fire it.
    percentile = models.CharField(max_length=3, choices=Percentile.choices, blank=True, default="")
    threshold = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    # Fewer calls than this in the window say nothing about latency or rates: not breached.
    min_calls = models.PositiveIntegerField(default=10)
    # runaway: per which dimension, K, the trailing baseline, and a floor below which spend
    # is never a runaway (a new user has no baseline at all).
    dimension = models.CharField(max_length=8, choices=RunawayDimension.choices, blank=True, default="")
    factor = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    baseline_hours = models.PositiveIntegerField(default=24)
    min_spend = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    renotify_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: tell once per firing.")
    muted_until = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=8, choices=RuleState.choices, default=RuleState.OK, editable=False)
    state_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_value = models.DecimalField(max_digits=SUM_COST_DIGITS, decimal_places=VALUE_PLACES, null=True,
                                     blank=True, editable=False)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_notified_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [models.Index(fields=["project", "state"], name="alertrule_project_idx")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Which fields each kind needs, with errors naming the field."""
        errors: dict[str, str] = {}
        if not 1 <= self.window_minutes <= MAX_WINDOW_MINUTES:
            errors["window_minutes"] = f"The window must be 1 to {MAX_WINDOW_MINUTES} minutes."
        if self.scope not in KIND_SCOPES.get(self.kind, ()):
            allowed = ", ".join(KIND_SCOPES.get(self.kind, ()))
            errors["scope"] = f"A {self.kind} rule can be scoped to: {allowed}."
        else:
            errors.update(self.scope_errors())
        if self.kind == RuleKind.RUNAWAY:
            if not self.dimension:
                errors["dimension"] = "Runaway detection watches each user, feature or trace: choose one."
            if self.factor is None or self.factor <= 1:
                errors["factor"] = "The factor K must be more than 1 (spend above K times the baseline)."
            if not 1 <= self.baseline_hours <= MAX_BASELINE_HOURS:
                errors["baseline_hours"] = f"The baseline must be 1 to {MAX_BASELINE_HOURS} hours."
            if self.min_spend is None or self.min_spend <= 0:
                errors["min_spend"] = "Give the least spend in the window that can be a runaway (USD, more than 0)."
        else:
            if self.threshold is None or self.threshold <= 0:
                errors["threshold"] = "The threshold must be more than 0."
            elif self.kind in PERCENT_KINDS and self.threshold > 100:
                errors["threshold"] = "The threshold is a percentage: more than 0 and at most 100."
            elif self.kind == RuleKind.LOOP and self.threshold != int(self.threshold):
                errors["threshold"] = "The threshold is a number of flagged traces: a whole number, 1 or more."
            if self.kind == RuleKind.LATENCY and not self.percentile:
                errors["percentile"] = "Choose the latency percentile: p50, p90, p95 or p99."
        if errors:
            raise ValidationError(errors)


class AlertRuleChange(models.Model):
    """A rule's move from one state to another, and what was observed when it moved."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="changes")
    from_state = models.CharField(max_length=8, choices=RuleState.choices)
    to_state = models.CharField(max_length=8, choices=RuleState.choices)
    value = models.DecimalField(max_digits=SUM_COST_DIGITS, decimal_places=VALUE_PLACES, null=True, blank=True)
    detail = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    # False while the rule was muted: the change happened, nobody was told.
    notified = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["rule", "-created_at"], name="alertrulechange_rule_idx")]

    def __str__(self) -> str:
        return f"{self.rule}: {self.from_state} → {self.to_state}"
