"""Health endpoints for load balancers and orchestrators, and metrics for Prometheus.

They are served before host validation and the HTTPS redirect (see middleware.py): probes and
scrapers call a container by its address over plain HTTP.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from observatory.health.checks import readiness
from observatory.health.exposition import metrics_access, metrics_text


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is alive and serving requests; says nothing about its dependencies."""
    return HttpResponse("ok\n", content_type="text/plain")


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: the database and the broker answer and every migration is applied."""
    checks = readiness()
    failed = [check.name for check in checks if not check.ok]
    body = {
        "status": "unavailable" if failed else "ok",
        "failed": failed,
        "checks": {check.name: check.detail for check in checks},
    }
    return JsonResponse(body, status=503 if failed else 200, headers={"Cache-Control": "no-store"})


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    status = metrics_access(
        authorization=request.META.get("HTTP_AUTHORIZATION"), remote_addr=request.META.get("REMOTE_ADDR")
    )
    if status != 200:
        return HttpResponse(status=status)
    return HttpResponse(metrics_text(scrape_time=True), content_type=CONTENT_TYPE_LATEST)
