"""Pages of one project, under /p/<slug>/. URL names match dashboards.pages.NAV."""

from django.urls import path

from dashboards.views.alerts import alerts
from dashboards.views.budgets import budgets
from dashboards.views.cost import cost
from dashboards.views.finance import finance
from dashboards.views.latency import latency
from dashboards.views.overview import overview
from dashboards.views.quality import quality
from dashboards.views.reliability import reliability
from dashboards.views.settings import settings_page
from dashboards.views.traces import trace, traces

app_name = "pages"

urlpatterns = [
    path("", overview, name="overview"),
    path("traces/", traces, name="traces"),
    # Trace ids are chosen by clients and may hold any character, "/" included.
    path("trace/<path:trace_id>", trace, name="trace"),
    path("latency/", latency, name="latency"),
    path("cost/", cost, name="cost"),
    path("quality/", quality, name="quality"),
    path("finance/", finance, name="finance"),
    path("reliability/", reliability, name="reliability"),
    path("budgets/", budgets, name="budgets"),
    path("alerts/", alerts, name="alerts"),
    path("settings/", settings_page, name="settings"),
]
