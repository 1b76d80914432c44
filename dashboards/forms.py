"""Forms: the trace list's filters (read from the URL) and the changes made on the settings, budgets
and alerts pages."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from observatory.alerts.models import AlertRule
from observatory.budgets.models import Budget, thresholds_clean
from observatory.calls.models import MODEL_CALL_KINDS, CallKind, CallStatus
from observatory.calls.records import MAX_LABEL_LENGTH
from observatory.calls.selectors import CallFilters
from observatory.notifications.recipients import recipients_clean
from observatory.pricing.models import validate_model_pattern
from observatory.reliability.models import EDITABLE, ReliabilitySettings
from observatory.tenancy.models import RedactionMode
from observatory.tenancy.roles import Role

SHOW_CHOICES = [("model", "Model calls"), ("roots", "Traces (root spans)"), ("all", "All spans")]


class TraceFilterForm(forms.Form):
    """The trace list's filters, all optional; every one is a URL parameter."""

    show = forms.ChoiceField(choices=SHOW_CHOICES, required=False)
    q = forms.CharField(required=False, max_length=200, label="Name contains")
    model = forms.CharField(required=False, max_length=MAX_LABEL_LENGTH)
    provider = forms.CharField(required=False, max_length=MAX_LABEL_LENGTH)
    feature = forms.CharField(required=False, max_length=MAX_LABEL_LENGTH)
    environment = forms.CharField(required=False, max_length=MAX_LABEL_LENGTH)
    status = forms.ChoiceField(choices=[("", "Any status"), *CallStatus.choices], required=False)
    finish_reason = forms.CharField(required=False, max_length=MAX_LABEL_LENGTH, label="Finish reason")
    kind = forms.ChoiceField(choices=[("", "Any kind"), *CallKind.choices], required=False)
    user_id = forms.CharField(required=False, max_length=MAX_LABEL_LENGTH, label="User")
    session_id = forms.CharField(required=False, max_length=MAX_LABEL_LENGTH, label="Session")
    trace_id = forms.CharField(required=False, max_length=128, label="Trace id")
    error_type = forms.CharField(required=False, max_length=MAX_LABEL_LENGTH, label="Error type")
    cost_min = forms.DecimalField(required=False, min_value=0, max_digits=20, decimal_places=12, label="Cost from ($)")
    cost_max = forms.DecimalField(required=False, min_value=0, max_digits=20, decimal_places=12, label="Cost to ($)")
    latency_min = forms.FloatField(required=False, min_value=0, label="Latency from (ms)")
    latency_max = forms.FloatField(required=False, min_value=0, label="Latency to (ms)")

    def call_filters(self, *, start, end) -> CallFilters:
        data = self.cleaned_data
        show = data.get("show") or "model"
        kinds = None
        if data.get("kind"):
            kinds = (data["kind"],)
        elif show == "model":
            kinds = tuple(sorted(MODEL_CALL_KINDS))
        if data.get("error_type") and not data.get("status"):
            data = {**data, "status": "error"}  # only errors have a type: and errors have an index
        text = {name: data.get(name) or None for name in ("model", "provider", "feature", "environment", "status",
                                                          "finish_reason", "user_id", "session_id", "trace_id",
                                                          "error_type")}
        return CallFilters(
            start=start, end=end, kinds=kinds, roots_only=show == "roots" or None, name_contains=data.get("q") or None,
            cost_min=data.get("cost_min"), cost_max=data.get("cost_max"),
            latency_min_ms=data.get("latency_min"), latency_max_ms=data.get("latency_max"), **text,
        )


# --- Settings ---------------------------------------------------------------------------


class ProjectSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    time_zone = forms.ChoiceField(choices=[(name, name) for name in sorted(zoneinfo.available_timezones())],
                                  help_text="Days, months and budgets of this project follow this zone.")
    redaction_mode = forms.ChoiceField(choices=RedactionMode.choices, label="Prompt content",
                                       help_text="Applies to calls received from now on.")
    retention_days = forms.IntegerField(required=False, label="Keep raw calls for (days)",
                                        validators=[MinValueValidator(1), MaxValueValidator(3650)],
                                        help_text="Empty: the deployment's RETENTION_DAYS. Rollups are kept longer.")


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=64, help_text="Used in URLs, e.g. support-bot.")


class MemberAddForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where it is used, e.g. production backend.")


class PriceOverrideForm(forms.Form):
    model_pattern = forms.CharField(max_length=200, validators=[validate_model_pattern],
                                    help_text="Regular expression matching the whole model name, e.g. ft:gpt-4o.*")
    provider = forms.CharField(max_length=64, required=False, help_text="Empty: any provider.")
    input_per_mtok = forms.DecimalField(min_value=0, max_digits=14, decimal_places=6, label="Input $/M tokens")
    cached_input_per_mtok = forms.DecimalField(min_value=0, max_digits=14, decimal_places=6, required=False,
                                               label="Cached input $/M")
    cache_write_per_mtok = forms.DecimalField(min_value=0, max_digits=14, decimal_places=6, required=False,
                                              label="Cache write $/M")
    output_per_mtok = forms.DecimalField(min_value=0, max_digits=14, decimal_places=6, label="Output $/M tokens")
    effective_from = forms.DateTimeField(required=False, help_text="Empty: now.",
                                         widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))


class ReliabilitySettingsForm(forms.ModelForm):
    """Loop limits and readiness thresholds (validated by the model's own validators)."""

    class Meta:
        model = ReliabilitySettings
        fields = list(EDITABLE)
        labels = {
            "loop_max_spans": "Loop: spans", "loop_max_cost": "Loop: spend (USD)",
            "loop_max_repeats": "Loop: same prompt", "loop_window_minutes": "Loop window (min)",
            "min_max_tokens_share": "max_tokens set (%)", "max_length_share": "Cut off at max_tokens (%)",
            "stream_after_ms": "Stream after (ms)", "min_streamed_share": "Streamed (%)",
            "min_timeout_share": "Timeout set (%)", "max_attempts": "Max attempts",
            "max_retry_share": "Retries (%)", "min_fallback_success": "Fallback success (%)",
            "latency_budget_ms": "P99 budget (ms)", "max_error_rate": "Error rate (%)",
            "min_prompt_version_share": "Prompt versioned (%)", "min_content_filter_share": "Content filtered (%)",
        }


# --- Budgets and alert rules ------------------------------------------------------------
# Model forms: the rules (amount above $0, thresholds 1..1000 %, recipients, which fields each
# rule kind needs) are the models' own validators and clean(), the same ones the API's
# serializers and the services run, so the page cannot accept what the API refuses.

_LIST_HELP = "Separated by commas."


class BudgetForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = ["name", "period", "amount", "scope", "scope_value", "thresholds", "recipients", "hard_cap",
                  "notify_forecast", "enabled"]
        labels = {"amount": "Amount (USD)", "scope_value": "Scope value", "thresholds": "Thresholds (%)",
                  "hard_cap": "Hard cap (the guard refuses calls once spent)",
                  "notify_forecast": "Warn when the forecast says it will run out"}
        help_texts = {"scope_value": "The model, provider, feature, environment, user id or tag; empty for the "
                                     "whole project.",
                      "thresholds": f"Percent of the amount, e.g. 50,80,100. {_LIST_HELP}",
                      "recipients": f"Email addresses and http(s) webhook URLs. {_LIST_HELP}"}

    # What the API's serializer does to these lists before storing them: sorted thresholds
    # without repeats, trimmed recipients without repeats.
    def clean_thresholds(self) -> list[int]:
        return thresholds_clean(self.cleaned_data["thresholds"])

    def clean_recipients(self) -> list[str]:
        return recipients_clean(self.cleaned_data["recipients"])


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = ["name", "kind", "threshold", "window_minutes", "percentile", "min_calls", "scope", "scope_value",
                  "dimension", "factor", "baseline_hours", "min_spend", "recipients", "renotify_minutes",
                  "muted_until", "enabled"]
        labels = {"window_minutes": "Window (minutes)", "min_calls": "At least this many calls",
                  "scope_value": "Scope value", "dimension": "Runaway: per", "factor": "Runaway: factor K",
                  "baseline_hours": "Runaway: baseline (hours)", "min_spend": "Runaway: least spend (USD)",
                  "renotify_minutes": "Tell again every (minutes)", "muted_until": "Muted until"}
        help_texts = {"threshold": "latency: ms; rates: percent; spend: USD; loop: flagged traces.",
                      "window_minutes": "1 to 1440.",
                      "percentile": "Latency rules only.",
                      "recipients": f"Email addresses and http(s) webhook URLs. {_LIST_HELP}"}
        widgets = {"muted_until": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")}

    def clean_recipients(self) -> list[str]:
        return recipients_clean(self.cleaned_data["recipients"])
