from __future__ import annotations

import msgspec
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest import metrics as ingest_metrics
from ingest.http import IngestError, body_read, json_decode, require_content_type
from ingest.native.schema import openapi_components
from ingest.native.services import events_ingest
from observatory.tenancy.authentication import MISSING_AUTHORIZATION, ApiKeyAuthentication
from observatory.tenancy.throttling import ApiKeyRateThrottle

_REQUEST_SCHEMA, _ = openapi_components()
_encoder = msgspec.json.Encoder()
_RESULT = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "rejected": {"type": "integer"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "status": {"enum": ["accepted", "duplicate", "rejected"]},
                    "trace_id": {"type": "string"},
                    "span_id": {"type": "string"},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                        },
                    },
                    "warnings": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
_PROBLEM = {"type": "object", "properties": {"detail": {"type": "string"}}}


class EventsView(APIView):
    """POST /api/v1/events: one event, or {"events": [...]} of up to 10,000."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [ApiKeyRateThrottle]
    parser_classes: list = []  # the body is read, size-limited and decoded by ingest.http

    def permission_denied(self, request: Request, message=None, code=None):
        if not request.successful_authenticator:
            # DRF's default says only "credentials were not provided"; say how to provide them.
            raise NotAuthenticated(MISSING_AUTHORIZATION)
        super().permission_denied(request, message=message, code=code)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        ingest_metrics.request_refused("events", response.status_code)  # 401 and 429 land here
        return response

    @extend_schema(
        operation_id="events_ingest",
        tags=["ingest"],
        request={"application/json": _REQUEST_SCHEMA},
        responses={
            200: OpenApiResponse(_RESULT, description="Every event stored (or already stored: a retry)."),
            207: OpenApiResponse(_RESULT, description="Some events stored, some rejected: see results."),
            400: OpenApiResponse(_RESULT, description="Malformed request, or every event rejected."),
            401: OpenApiResponse(_PROBLEM, description="Missing, unknown or revoked API key."),
            413: OpenApiResponse(_PROBLEM, description="Body over the limit, before or after decompression."),
            415: OpenApiResponse(_PROBLEM, description="Not JSON, or an unsupported Content-Encoding."),
            429: OpenApiResponse(_PROBLEM, description="Rate limit of the key exceeded; see Retry-After."),
            503: OpenApiResponse(_PROBLEM, description="Storage unavailable; nothing stored, retry."),
        },
        examples=[
            OpenApiExample(
                "One call",
                request_only=True,
                value={
                    "id": "evt_7f3a",
                    "start_time": "2026-11-22T10:15:00.120Z",
                    "latency_ms": 812,
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "input_tokens": 1200,
                    "output_tokens": 180,
                    "finish_reason": "stop",
                    "user_id": "user_42",
                    "feature": "support-chat",
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        with ingest_metrics.request_timer("events"):
            return self._ingest(request)

    def _ingest(self, request: Request) -> Response:
        try:
            require_content_type(request, "application/json")
            payload = json_decode(body_read(request._request))
            report = events_ingest(project=request.auth.project, payload=payload)
        except IngestError as error:
            ingest_metrics.request_refused("events", error.status)
            body = {"detail": error.message}
            if error.field:
                body["field"] = error.field
            return Response(body, status=error.status)
        ingest_metrics.events_accepted("events", report.body["accepted"] + report.body["duplicates"])
        ingest_metrics.events_rejected("events", report.body["rejected"])
        # A batch answers with one result per event: msgspec encodes that several times faster
        # than DRF's renderer, and the shape is documented above.
        return HttpResponse(_encoder.encode(report.body), status=report.status, content_type="application/json")
