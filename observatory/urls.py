from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from observatory.health.views import healthz, metrics, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("", include("ingest.urls")),
    path("", include("dashboards.urls")),
]
