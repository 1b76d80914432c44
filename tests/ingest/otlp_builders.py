"""Build OTLP export requests the way exporters serialise them, for tests."""

from __future__ import annotations

import os
import time
from typing import Any

from django.test import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

PROTOBUF = "application/x-protobuf"


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[any_value(item) for item in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    raise TypeError(type(value))


def key_values(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in values.items()]


def new_trace_id() -> bytes:
    return os.urandom(16)


def new_span_id() -> bytes:
    return os.urandom(8)


def span(*, name: str, trace_id: bytes, span_id: bytes | None = None, parent: bytes = b"", start_ns: int | None = None,
         duration_ms: float = 100.0, attributes: dict[str, Any] | None = None, events=(), error: str | None = None,
         end_ns: int | None = None) -> Span:
    start_ns = start_ns if start_ns is not None else time.time_ns() - 60 * 10**9
    built = Span(
        trace_id=trace_id,
        span_id=span_id if span_id is not None else new_span_id(),
        parent_span_id=parent,
        name=name,
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=end_ns if end_ns is not None else start_ns + int(duration_ms * 1e6),
        attributes=key_values(attributes or {}),
        status=Status(code=Status.STATUS_CODE_ERROR, message=error) if error else Status(),
    )
    for event_name, event_attributes, offset_ms in events:
        built.events.add(name=event_name, time_unix_nano=start_ns + int(offset_ms * 1e6),
                         attributes=key_values(event_attributes))
    return built


def export_request(spans: list[Span], *, resource: dict[str, Any] | None = None,
                   scope: str = "tests") -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(key_values(resource or {"service.name": "checkout-api"}))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = scope
    scope_spans.spans.extend(spans)
    return request


def post_otlp(secret: str, body: bytes, *, content_type: str = PROTOBUF, path: str = "/v1/traces",
              headers: dict | None = None):
    return Client().generic("POST", path, body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {secret}",
                            **(headers or {}))
