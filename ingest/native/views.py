"""POST /api/v1/events: one event, or {"events": [...]} of up to 10,000.

A plain Django view, like the OTLP and Langfuse receivers: it authenticates the API key and
applies its rate limit itself, so a request costs no DRF machinery (content negotiation,
authentication classes, throttles) on the busiest path of the product. Its OpenAPI operation
is in ingest/openapi.py.
"""

from __future__ import annotations

import msgspec
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ingest import metrics as ingest_metrics
from ingest.http import IngestError, body_read, json_decode, require_content_type
from ingest.native.services import events_ingest
from observatory.tenancy.authentication import AuthorizationError, api_key_from_authorization
from observatory.tenancy.models import ApiKey
from observatory.tenancy.throttling import rate_limit_wait

_encoder = msgspec.json.Encoder()


def _json(body: dict, status: int) -> HttpResponse:
    # A batch answers with one result per event: msgspec encodes that several times faster
    # than Django's JsonResponse.
    return HttpResponse(_encoder.encode(body), status=status, content_type="application/json")


def _refused(message: str, status: int, *, field: str | None = None) -> HttpResponse:
    ingest_metrics.request_refused("events", status)
    body = {"detail": message}
    if field:
        body["field"] = field
    return _json(body, status)


@csrf_exempt
@require_POST
def events_ingest_view(request: HttpRequest) -> HttpResponse:
    try:
        key = api_key_from_authorization(request.META.get("HTTP_AUTHORIZATION"))
    except AuthorizationError as error:
        response = _refused(str(error), 401)
        response["WWW-Authenticate"] = 'Bearer realm="observatory"'
        return response
    wait = rate_limit_wait(key)
    if wait is not None:
        response = _refused(f"Request was throttled: this API key's rate limit is exceeded. Retry in {wait} s.", 429)
        response["Retry-After"] = str(wait)
        return response
    with ingest_metrics.request_timer("events"):  # requests that were let in
        return _ingest(request, key)


def _ingest(request: HttpRequest, key: ApiKey) -> HttpResponse:
    try:
        require_content_type(request, "application/json")
        report = events_ingest(project=key.project, payload=json_decode(body_read(request)))
    except IngestError as error:
        return _refused(error.message, error.status, field=error.field)
    ingest_metrics.events_accepted("events", report.body["accepted"] + report.body["duplicates"])
    ingest_metrics.events_rejected("events", report.body["rejected"])
    return _json(report.body, report.status)
