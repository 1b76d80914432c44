"""Langfuse-compatible endpoints: a Langfuse SDK changes only its host and keys.

POST /api/public/ingestion   legacy batch (traces, observations, scores), 207 per event
POST /api/public/scores      scores (what SDK v3 and later send)
GET  /api/public/projects    the key's project (the SDKs' auth check)
GET  /api/public/health
The OTLP endpoint the SDKs export spans to is ingest.otlp.views.traces_export.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ingest import metrics as ingest_metrics
from ingest.http import IngestError, body_read, json_decode, require_content_type
from ingest.langfuse.services import MAX_BATCH, ingestion_process, scores_process
from observatory.tenancy.authentication import AuthorizationError, api_key_from_authorization
from observatory.tenancy.models import ApiKey
from observatory.tenancy.throttling import rate_limit_wait


def _message(text: str, status: int, **headers: str) -> JsonResponse:
    ingest_metrics.request_refused("langfuse", status)
    response = JsonResponse({"message": text, "error": text}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _authenticated(request: HttpRequest) -> ApiKey | JsonResponse:
    try:
        key = api_key_from_authorization(request.headers.get("Authorization"))
    except AuthorizationError as error:
        return _message(str(error), 401)
    wait = rate_limit_wait(key)
    if wait is not None:
        return _message("Rate limit of this API key exceeded; retry later.", 429, **{"Retry-After": str(wait)})
    return key


def _json_body(request: HttpRequest):
    require_content_type(request, "application/json")
    return json_decode(body_read(request))


@csrf_exempt
@require_POST
def ingestion(request: HttpRequest) -> JsonResponse:
    key = _authenticated(request)
    if isinstance(key, JsonResponse):
        return key
    try:
        payload = _json_body(request)
        batch = payload.get("batch") if isinstance(payload, dict) else None
        if not isinstance(batch, list):
            raise IngestError('The body must be {"batch": [...]}.')
        if len(batch) > MAX_BATCH:
            raise IngestError(f"batch has {len(batch):,} events; the limit is {MAX_BATCH:,}.")
    except IngestError as error:
        return _message(error.message, error.status)
    with ingest_metrics.request_timer("langfuse"):
        result = ingestion_process(project=key.project, batch=batch)
    ingest_metrics.events_accepted("langfuse", len(result.successes))
    ingest_metrics.events_rejected("langfuse", len(result.errors))
    return JsonResponse({"successes": result.successes, "errors": result.errors}, status=207)


@csrf_exempt
@require_POST
def scores(request: HttpRequest) -> JsonResponse:
    key = _authenticated(request)
    if isinstance(key, JsonResponse):
        return key
    try:
        payload = _json_body(request)
    except IngestError as error:
        return _message(error.message, error.status)
    if isinstance(payload, dict):  # one score, the older shape of this endpoint
        accepted, errors = scores_process(project=key.project, items=[payload])
        return JsonResponse({"id": accepted[0]}) if accepted else _message(errors[0], 400)
    if not isinstance(payload, list) or len(payload) > MAX_BATCH:
        return _message(f"The body must be a score or a list of at most {MAX_BATCH:,} scores.", 400)
    accepted, errors = scores_process(project=key.project, items=payload)
    if not errors:
        return JsonResponse({"message": "Accepted"}, status=202)
    return JsonResponse({"accepted": len(accepted), "rejected": len(errors),
                         "errors": [{"message": message} for message in errors]}, status=207)


@require_GET
def projects(request: HttpRequest) -> JsonResponse:
    key = _authenticated(request)
    if isinstance(key, JsonResponse):
        return key
    project = key.project
    organization = project.organization
    return JsonResponse({"data": [{
        "id": project.slug, "name": project.name, "metadata": {}, "retentionDays": project.retention_days,
        "organization": {"id": organization.slug, "name": organization.name},
    }]})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "OK", "version": "observatory"})
