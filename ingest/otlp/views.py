"""POST /v1/traces (OTLP/HTTP) and its Langfuse alias POST /api/public/otel/v1/traces.

Errors follow the OTLP/HTTP specification: a google.rpc.Status body in the request's encoding,
400 for data that can never be accepted, 429 with Retry-After when throttled.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from google.rpc import code_pb2

from ingest import metrics as ingest_metrics
from ingest.http import IngestError, body_read
from ingest.otlp.decode import JSON, PROTOBUF, request_decode, response_encode, status_encode
from ingest.otlp.services import otlp_ingest
from observatory.tenancy.authentication import AuthorizationError, api_key_from_authorization
from observatory.tenancy.throttling import rate_limit_wait


def _status(message: str, *, status: int, media_type: str, code: int, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(status_encode(message=message, media_type=media_type, code=code), status=status,
                            content_type=media_type)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@csrf_exempt
@require_POST
def traces_export(request: HttpRequest) -> HttpResponse:
    with ingest_metrics.request_timer("otlp"):
        response = _export(request)
    if response.status_code != 200:
        ingest_metrics.request_refused("otlp", response.status_code)
    return response


def _export(request: HttpRequest) -> HttpResponse:
    media_type = (request.content_type or "").split(";")[0].strip().lower()
    reply_type = PROTOBUF if media_type == PROTOBUF else JSON
    if media_type not in (PROTOBUF, JSON):
        return _status(f"Content-Type must be {PROTOBUF} or {JSON}, not {media_type or 'none'}.", status=415,
                       media_type=JSON, code=code_pb2.INVALID_ARGUMENT)
    try:
        key = api_key_from_authorization(request.headers.get("Authorization"))
    except AuthorizationError as error:
        return _status(str(error), status=401, media_type=reply_type, code=code_pb2.UNAUTHENTICATED)
    wait = rate_limit_wait(key)
    if wait is not None:
        return _status("Rate limit of this API key exceeded; retry later.", status=429, media_type=reply_type,
                       code=code_pb2.RESOURCE_EXHAUSTED, headers={"Retry-After": str(wait)})
    try:
        export = request_decode(body_read(request), media_type)
    except IngestError as error:
        return _status(error.message, status=error.status, media_type=reply_type, code=code_pb2.INVALID_ARGUMENT)
    report = otlp_ingest(project=key.project, request=export)
    ingest_metrics.events_accepted("otlp", report.accepted + report.duplicates)
    ingest_metrics.events_rejected("otlp", report.rejected)
    if report.spans and report.rejected == report.spans:
        return _status(f"No span could be stored: {report.message}", status=400, media_type=reply_type,
                       code=code_pb2.INVALID_ARGUMENT)
    body = response_encode(rejected=report.rejected, message=report.message, media_type=reply_type)
    return HttpResponse(body, status=200, content_type=reply_type)
