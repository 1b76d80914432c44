"""OTLP/HTTP trace requests in, responses out, in the encoding the client chose.

Protobuf and JSON are both accepted (https://opentelemetry.io/docs/specs/otlp/#otlphttp).
OTLP/JSON writes trace and span ids as hex, where the generic protobuf JSON mapping expects
base64: ids are converted before parsing, and an id that is not hex becomes empty so that its
span is refused on its own instead of failing the whole request.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ingest.http import IngestError, json_decode

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def request_decode(body: bytes, media_type: str) -> ExportTraceServiceRequest:
    if media_type == PROTOBUF:
        try:
            return ExportTraceServiceRequest.FromString(body)
        except DecodeError as error:
            raise IngestError(f"The body is not a valid OTLP protobuf ExportTraceServiceRequest ({error}).") from None
    document = json_decode(body)
    if not isinstance(document, dict) or not isinstance(document.get("resourceSpans"), list):
        raise IngestError('The JSON is not an OTLP ExportTraceServiceRequest: expected {"resourceSpans": [...]}.')
    _hex_ids_to_base64(document)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise IngestError(f"The JSON is not a valid OTLP ExportTraceServiceRequest: {error}") from None
    return request


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    for resource_spans in document.get("resourceSpans") or []:
        if not isinstance(resource_spans, dict):
            continue
        for scope_spans in resource_spans.get("scopeSpans") or []:
            if not isinstance(scope_spans, dict):
                continue
            for span in scope_spans.get("spans") or []:
                if not isinstance(span, dict):
                    continue
                _convert(span)
                for link in span.get("links") or []:
                    if isinstance(link, dict):
                        _convert(link)


def _convert(item: dict[str, Any]) -> None:
    for name in _ID_FIELDS:
        value = item.get(name)
        if not isinstance(value, str) or not value:
            continue
        try:
            item[name] = base64.b64encode(bytes.fromhex(value)).decode()
        except ValueError:
            item[name] = ""  # refused later as a span without a valid id


def response_encode(*, rejected: int, message: str, media_type: str) -> bytes:
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.CopyFrom(ExportTracePartialSuccess(rejected_spans=rejected, error_message=message))
    if media_type == PROTOBUF:
        return response.SerializeToString()
    return json_format.MessageToJson(response, indent=None).encode()


def status_encode(*, message: str, media_type: str, code: int = code_pb2.INVALID_ARGUMENT) -> bytes:
    """A google.rpc.Status, the error body OTLP/HTTP specifies."""
    status = status_pb2.Status(code=code, message=message)
    if media_type == PROTOBUF:
        return status.SerializeToString()
    return msgspec.json.encode({"code": code, "message": message})


def hex_id(raw: bytes) -> str:
    return binascii.hexlify(raw).decode()
