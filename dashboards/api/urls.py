"""The read and management API under /api/v1/ (DRF; documented at /api/schema/)."""

from django.urls import path

from dashboards.api.alerts import AlertHistoryView, AlertRuleChangesView, AlertRuleDetailView, AlertRuleListView
from dashboards.api.budgets import BudgetDetailView, BudgetListView, SpendDigestView
from dashboards.api.calls import CallListView, TraceView
from dashboards.api.guard import GuardView
from dashboards.api.metrics import MetricsView
from dashboards.api.prices import PriceOverrideDetailView, PriceOverrideListView
from dashboards.api.reliability import LoopsView, ReadinessView, ReliabilitySettingsView

app_name = "api"

urlpatterns = [
    path("calls", CallListView.as_view(), name="calls"),
    path("traces/<str:trace_id>", TraceView.as_view(), name="trace"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("price-overrides", PriceOverrideListView.as_view(), name="price-overrides"),
    path("price-overrides/<int:pk>", PriceOverrideDetailView.as_view(), name="price-override"),
    path("budgets", BudgetListView.as_view(), name="budgets"),
    path("budgets/<int:pk>", BudgetDetailView.as_view(), name="budget"),
    path("spend-digest", SpendDigestView.as_view(), name="spend-digest"),
    path("guard", GuardView.as_view(), name="guard"),
    path("alert-rules", AlertRuleListView.as_view(), name="alert-rules"),
    path("alert-rules/<int:pk>", AlertRuleDetailView.as_view(), name="alert-rule"),
    path("alert-rules/<int:pk>/changes", AlertRuleChangesView.as_view(), name="alert-rule-changes"),
    path("alerts", AlertHistoryView.as_view(), name="alerts"),
    path("readiness", ReadinessView.as_view(), name="readiness"),
    path("readiness/settings", ReliabilitySettingsView.as_view(), name="readiness-settings"),
    path("loops", LoopsView.as_view(), name="loops"),
]
