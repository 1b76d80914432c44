"""The Reliability page: safety-net rates, fallbacks, providers, runaway loops and the
readiness scorecard; admins and engineers edit the thresholds and loop limits here."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone

from dashboards import charts
from dashboards.filters import METRIC_FILTERS
from dashboards.forms import ReliabilitySettingsForm
from dashboards.pages import Page, project_page
from dashboards.selectors.reliability import reliability_get
from dashboards.tables import Column, Table
from dashboards.views.traces import trace_url
from observatory.reliability.loops import LOOP_REASON_LABELS
from observatory.reliability.selectors import reliability_settings_get
from observatory.reliability.services import reliability_settings_update
from observatory.tenancy.roles import Capability


def _label(provider: str | None, model: str | None) -> str:
    return " / ".join(part for part in (provider, model) if part) or "(unnamed)"


def _tables(page: Page, data) -> list[Table]:
    for row in data.providers:
        if row.get("provider"):
            row["provider_url"] = page.url("traces", provider=row["provider"])
    providers = Table(name="providers", title="By provider", rows=data.providers, columns=[
        Column("provider", "Provider"), Column("count", "Calls", "int"),
        Column("rate_limit_rate", "429", "pct"), Column("server_error_rate", "5xx", "pct"),
        Column("timeout_rate", "Timeouts", "pct"), Column("retry_rate", "Retries", "pct"),
        Column("fallback_rate", "Fallbacks", "pct"),
    ])
    fallbacks = Table(
        name="fallbacks", title="Fallbacks: from which model to which", empty="No call fell back in this range.",
        note="Per 100 calls: fallbacks to this model for every 100 calls to the primary one.",
        columns=[Column("primary", "Primary"), Column("fallback", "Fell back to"), Column("calls", "Calls", "int"),
                 Column("per_100", "Per 100 calls", "float"), Column("success_rate", "Succeeded", "pct")],
        rows=[{"primary": _label(pair.from_provider, pair.from_model), "fallback": _label(pair.provider, pair.model),
               "calls": pair.calls, "per_100": None if pair.rate is None else pair.rate * 100,
               "success_rate": pair.success_rate,
               "fallback_url": page.url("traces", model=pair.model) if pair.model else None}
              for pair in data.fallbacks])
    loops = Table(
        name="loops", title="Runaway loops", empty="No trace was flagged as a loop in this range.",
        columns=[Column("flagged_at", "Flagged", "datetime"), Column("name", "Trace"), Column("why", "Why"),
                 Column("span_count", "Spans", "int"), Column("repeated_prompts", "Same prompt", "int"),
                 Column("cost", "Spend", "money")],
        rows=[{"flagged_at": trace.loop_flagged_at, "name": trace.name or trace.trace_id,
               "name_url": trace_url(page, trace.trace_id), "span_count": trace.span_count,
               "why": ", ".join(LOOP_REASON_LABELS.get(reason, reason) for reason in trace.loop_reasons or []),
               "repeated_prompts": trace.repeated_prompts, "cost": trace.cost} for trace in data.loops])
    return [providers, fallbacks, loops]


def _figures(page: Page, data) -> dict:
    rng = page.range
    return {
        "cache": charts.time_lines(data.series, metrics={"cache_hit_rate": "Hit rate"}, time_range=rng, unit="pct"),
        "savings": charts.time_lines(data.series, metrics={"cache_saved_cost": "Saved by cache hits"},
                                     time_range=rng, unit="money"),
        "retries": charts.time_lines(data.series, metrics={"retry_rate": "Retries", "fallback_rate": "Fallbacks"},
                                     time_range=rng, unit="pct"),
        "rate_limits": charts.grouped_time(data.provider_series, group="provider", metric="rate_limit_rate",
                                           time_range=rng, unit="pct", weight="count"),
        "server_errors": charts.grouped_time(data.provider_series, group="provider", metric="server_error_rate",
                                             time_range=rng, unit="pct", weight="count"),
        "guards": charts.time_lines(data.series, metrics={"timeout_rate": "Timeouts",
                                                          "content_filter_rate": "Blocked or flagged"},
                                    time_range=rng, unit="pct"),
    }


def _show(page: Page, *, form: ReliabilitySettingsForm | None = None, status: int = 200) -> HttpResponse:
    data = reliability_get(project=page.project, time_range=page.range, filters=page.filters, now=timezone.now())
    can_edit = page.can(Capability.MANAGE_ALERTS)
    if form is None and can_edit:
        form = ReliabilitySettingsForm(instance=reliability_settings_get(project=page.project))
    return page.render("dashboards/reliability.html", {
        "data": data, "settings_form": form, "can_edit": can_edit,
        "charts": {name: figure for name, figure in _figures(page, data).items() if figure},
    }, tables=_tables(page, data), status=status)


@project_page("reliability", filters=METRIC_FILTERS, default_range="7d")
def reliability(request: HttpRequest, page: Page) -> HttpResponse:
    if request.method != "POST":
        return _show(page)
    if not page.can(Capability.MANAGE_ALERTS):
        raise PermissionDenied(f"Your role ({page.access.role}) cannot change thresholds.")
    form = ReliabilitySettingsForm(request.POST, instance=reliability_settings_get(project=page.project))
    if not form.is_valid():
        return _show(page, form=form, status=400)
    changes = reliability_settings_update(project=page.project, actor=request.user,
                                          **{name: form.cleaned_data[name] for name in form.changed_data})
    said = [f"{form.fields[name].label} {old} → {new}" for name, (old, new) in changes.items()]
    messages.success(request, f"Saved: {'; '.join(said) or 'nothing changed'}.")
    return redirect(f"{page.url('reliability')}#thresholds")
