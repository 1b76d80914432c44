"""GET /api/v1/metrics: counts, error rates, tokens, cost and percentiles from the rollups."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboards.api.access import api_project_access
from observatory.metrics.selectors import (
    COST_METRICS,
    GROUPABLE,
    INTERVALS,
    USER,
    METRICS,
    MetricsQueryError,
    interval_choose,
    metrics_query,
)
from observatory.tenancy.roles import Capability

DEFAULT_WINDOW = timedelta(hours=24)
MAX_LIMIT = 10_000
_CONTROL_PARAMETERS = {"project", "metrics", "start", "end", "interval", "group_by", "order_by", "limit", "format"}


def timestamp_param(name: str, value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is not None:
            moment = datetime.combine(day, time.min)
    if moment is None:
        raise ValidationError({name: [f"{value!r} is not an ISO 8601 date or time, e.g. 2026-11-20T10:00:00Z."]})
    # A time without an offset is UTC, as every bucket is.
    return moment.replace(tzinfo=UTC) if timezone.is_naive(moment) else moment.astimezone(UTC)


def window_params(params, default: timedelta = DEFAULT_WINDOW) -> tuple[datetime, datetime]:
    """`start` and `end` of a request (end defaults to now, start to `default` before end)."""
    end = timestamp_param("end", params["end"]) if params.get("end") else timezone.now().astimezone(UTC)
    start = timestamp_param("start", params["start"]) if params.get("start") else end - default
    return start, end


def _names(request: Request, name: str) -> list[str]:
    return [part.strip() for value in request.query_params.getlist(name) for part in value.split(",") if part.strip()]


class MetricsResponseSerializer(serializers.Serializer):
    project = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    interval = serializers.ChoiceField(choices=[*INTERVALS, "none"])
    metrics = serializers.ListField(child=serializers.ChoiceField(choices=METRICS))
    group_by = serializers.ListField(child=serializers.ChoiceField(choices=GROUPABLE))
    rows = serializers.ListField(
        child=serializers.DictField(),
        help_text="One object per bucket and group: `bucket` (start of the bucket, UTC) unless interval=none, "
        "the group_by dimensions (null when a call had none), then each metric. Costs are decimal strings; "
        "percentiles are milliseconds (tokens per second for tokens_per_second_*), null without values.",
    )


_PARAMETERS = [
    OpenApiParameter("metrics", OpenApiTypes.STR, required=True,
                     description="Comma-separated metrics: " + ", ".join(METRICS) + "."),
    OpenApiParameter("start", OpenApiTypes.DATETIME, description="Window start, ISO 8601 (default: end - 24h)."),
    OpenApiParameter("end", OpenApiTypes.DATETIME, description="Window end, exclusive (default: now)."),
    OpenApiParameter("interval", OpenApiTypes.STR, enum=[*INTERVALS, "none"],
                     description="Time bucket; `none` for one row per group over the whole window. "
                                 "Default: minute up to 6 h, hour up to 14 days, day beyond."),
    OpenApiParameter("group_by", OpenApiTypes.STR,
                     description="Comma-separated dimensions: " + ", ".join(GROUPABLE)
                     + ". user_id stands alone and gives sums only."),
    OpenApiParameter("order_by", OpenApiTypes.STR, description="A requested metric, `-` first for descending."),
    OpenApiParameter("limit", OpenApiTypes.INT, description=f"At most this many rows (1-{MAX_LIMIT})."),
    OpenApiParameter("project", OpenApiTypes.STR, description="Project slug (session login; an API key implies it)."),
    *[
        OpenApiParameter(name, OpenApiTypes.STR, many=True, explode=True,
                         description=f"Only calls with this {name} (repeat for several; empty for none).")
        for name in GROUPABLE
    ],
]


class MetricsView(APIView):
    @extend_schema(
        operation_id="metrics_query",
        summary="Metrics over any window, by time bucket and dimension",
        description=(
            "Model calls (generations and embeddings) that started in [start, end). Whole buckets come "
            "from rollups, partial ones at the window's edges from raw calls, so sums are exact to the "
            "second; percentiles are within 1% of the exact value."
        ),
        parameters=_PARAMETERS,
        responses={200: MetricsResponseSerializer},
        examples=[
            OpenApiExample(
                "P99 latency by model per hour",
                value={
                    "project": "support-bot", "start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z",
                    "interval": "hour", "metrics": ["count", "latency_p99"], "group_by": ["model"],
                    "rows": [{"bucket": "2026-11-20T00:00:00Z", "model": "gpt-4o-mini", "count": 412,
                              "latency_p99": 3120.4}],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        # Membership before validation: someone outside the organization gets the same 404 for
        # any query, and no lesson in how to write a valid one.
        api_project_access(request, Capability.VIEW_TRACES)
        params = request.query_params
        unknown = sorted(set(params) - _CONTROL_PARAMETERS - set(GROUPABLE))
        if unknown:
            raise ValidationError({unknown[0]: [f"Unknown parameter {unknown[0]!r}; filter by one of: "
                                                f"{', '.join(GROUPABLE)}."]})
        metrics = _names(request, "metrics")
        if not metrics:
            raise ValidationError({"metrics": ["Name at least one metric, e.g. metrics=count,latency_p99."]})
        start, end = window_params(params)
        interval: str | None = params.get("interval") or None
        group_by = _names(request, "group_by")
        filters = {name: params.getlist(name) for name in GROUPABLE if name in params}
        if interval is None and end > start:
            interval = interval_choose(start=start, end=end, users=USER in group_by or USER in filters)
        elif interval == "none":
            interval = None
        limit = None
        if params.get("limit"):
            try:
                limit = int(params["limit"])
            except ValueError:
                raise ValidationError({"limit": [f"{params['limit']!r} is not a whole number."]}) from None
            if not 1 <= limit <= MAX_LIMIT:
                raise ValidationError({"limit": [f"limit must be between 1 and {MAX_LIMIT}."]})

        capability = Capability.VIEW_COSTS if set(metrics) & COST_METRICS else Capability.VIEW_TRACES
        access = api_project_access(request, capability)
        try:
            result = metrics_query(
                project=access.project, start=start, end=end, metrics=metrics, interval=interval,
                group_by=group_by, filters=filters, order_by=params.get("order_by") or None,
                limit=limit,
            )
        except MetricsQueryError as error:
            raise ValidationError({error.parameter: [error.message]}) from None
        return Response({
            "project": access.project.slug,
            "start": start.isoformat().replace("+00:00", "Z"),
            "end": end.isoformat().replace("+00:00", "Z"),
            "interval": result.interval or "none",
            "metrics": metrics,
            "group_by": group_by,
            "rows": [_json_row(row) for row in result.rows],
        })


def _json_row(row: dict) -> dict:
    out = {}
    for name, value in row.items():
        if isinstance(value, Decimal):
            value = str(value)  # money stays exact: never a float
        elif isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        out[name] = value
    return out
