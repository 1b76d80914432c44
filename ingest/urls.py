"""The ways in: native events API, OTLP/HTTP and the Langfuse-compatible endpoints."""

from django.urls import path

from ingest.langfuse import views as langfuse
from ingest.native.views import events_ingest_view
from ingest.otlp.views import traces_export

urlpatterns = [
    path("api/v1/events", events_ingest_view, name="events-ingest"),
    path("v1/traces", traces_export, name="otlp-traces"),
    # Langfuse SDKs, unchanged but for host and keys. Spans go to the same OTLP receiver.
    path("api/public/otel/v1/traces", traces_export, name="langfuse-otel-traces"),
    path("api/public/ingestion", langfuse.ingestion, name="langfuse-ingestion"),
    path("api/public/scores", langfuse.scores, name="langfuse-scores"),
    path("api/public/projects", langfuse.projects, name="langfuse-projects"),
    path("api/public/health", langfuse.health, name="langfuse-health"),
]
