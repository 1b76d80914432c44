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
from observatory.tenancy.authentication import (
    AuthorizationError,
    api_key_looked_up_again,
    recent_api_key_from_authorization,
)
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


def _unauthorized(error: AuthorizationError) -> HttpResponse:
    response = _refused(str(error), 401)
    response["WWW-Authenticate"] = 'Bearer realm="observatory"'
    return response


@csrf_exempt
@require_POST
def events_ingest_view(request: HttpRequest) -> HttpResponse:
    header = request.META.get("HTTP_AUTHORIZATION")
    try:
        # A key remembered from an earlier request is proven by the write that stores this
        # one's calls, in the same statement (observatory.tenancy.recent_keys).
        key, proven = recent_api_key_from_authorization(header)
    except AuthorizationError as error:
        return _unauthorized(error)
    wait = rate_limit_wait(key)
    if wait is not None:
        if not proven:
            try:
                api_key_looked_up_again(header)  # a revoked key hears 401, not 429
            except AuthorizationError as error:
                return _unauthorized(error)
        response = _refused(f"Request was throttled: this API key's rate limit is exceeded. Retry in {wait} s.", 429)
        response["Retry-After"] = str(wait)
        return response
    with ingest_metrics.request_timer("events"):  # requests that were let in
        try:
            return _ingest(request, header, key, proven)
        except AuthorizationError as error:  # revoked since it was remembered
            return _unauthorized(error)


def _ingest(request: HttpRequest, header: str | None, key: ApiKey, proven: bool) -> HttpResponse:
    try:
        require_content_type(request, "application/json")
        payload = json_decode(body_read(request))
        report = events_ingest(project=key.project, payload=payload, unproven_key=None if proven else key)
    except IngestError as error:
        if not proven:
            api_key_looked_up_again(header)  # a revoked key hears 401, not what was wrong with its request
        return _refused(error.message, error.status, field=error.field)
    if report.stale or (not proven and not report.stored_anything):
        # No write proved the remembered key, or the write refused the group this request was
        # in (another request's key, or the project, had changed): look the key up, and store
        # again if nothing was stored.
        key = api_key_looked_up_again(header)
        if report.stale:
            report = events_ingest(project=key.project, payload=payload)
    ingest_metrics.events_accepted("events", report.body["accepted"] + report.body["duplicates"])
    ingest_metrics.events_rejected("events", report.body["rejected"])
    return _json(report.body, report.status)
