"""The ingest endpoint's operation and the msgspec-generated ingest schemas, added to the
OpenAPI document.

POST /api/v1/events is a plain Django view (see ingest/native/views.py), which
drf-spectacular does not see, so its operation is written here; the request schema comes from
the same msgspec types that validate it, so the document cannot drift from what is accepted.
"""

from django.urls import reverse

from ingest.native.schema import openapi_components

_ERRORS = {
    "type": "array",
    "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}},
}
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
                    "errors": _ERRORS,
                    "warnings": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
_PROBLEM = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "field": {"type": "string", "description": "The field at fault, when one is."},
    },
}
_RESPONSES = {
    200: (_RESULT, "Every event stored (or already stored: a retry)."),
    207: (_RESULT, "Some events stored, some rejected: see results."),
    400: (_RESULT, "Malformed request, or every event rejected."),
    401: (_PROBLEM, "Missing, unknown or revoked API key."),
    405: (None, "Only POST is allowed."),
    408: (_PROBLEM, "The connection failed before the body was complete."),
    413: (_PROBLEM, "Body over the limit, before or after decompression."),
    415: (_PROBLEM, "Not JSON, or an unsupported Content-Encoding."),
    429: (_PROBLEM, "Rate limit of the key exceeded; see Retry-After."),
    503: (_PROBLEM, "Storage unavailable; nothing stored, retry."),
}
_EXAMPLE = {
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
}


def events_operation() -> dict:
    request_schema, _ = openapi_components()
    return {
        "operationId": "events_ingest",
        "summary": 'Store LLM calls: one event, or {"events": [...]} of up to 10,000.',
        "tags": ["ingest"],
        "security": [{"apiKeyBearer": []}, {"apiKeyBasic": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": request_schema, "examples": {"OneCall": {"value": _EXAMPLE}}}
            },
        },
        "responses": {
            str(status): {"description": description}
            | ({"content": {"application/json": {"schema": schema}}} if schema else {})
            for status, (schema, description) in _RESPONSES.items()
        },
    }


def add_ingest_components(result, generator, request, public):
    _, components = openapi_components()
    result.setdefault("components", {}).setdefault("schemas", {}).update(components)
    result.setdefault("paths", {}).setdefault(reverse("events-ingest"), {})["post"] = events_operation()
    return result
