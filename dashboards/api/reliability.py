"""Production readiness over the API: the scorecard, its thresholds and loop limits, and the
traces flagged as runaway loops. The safety-net rates themselves are metrics (/api/v1/metrics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboards.api.access import api_project_access
from dashboards.api.metrics import window_params
from dashboards.api.scoped import PROJECT_PARAMETER, service_call, user_or_none
from observatory.reliability.models import EDITABLE, ReliabilitySettings
from observatory.reliability.scorecard import STATUS_VALUES, Example, scorecard_get
from observatory.reliability.selectors import loops_list, reliability_settings_get
from observatory.reliability.services import reliability_settings_update
from observatory.tenancy.models import Project
from observatory.tenancy.roles import Capability

DEFAULT_WINDOW = timedelta(days=7)
MAX_WINDOW = timedelta(days=400)
_TAGS = {"tags": ["readiness"]}
_WINDOW = [
    PROJECT_PARAMETER,
    OpenApiParameter("start", OpenApiTypes.DATETIME, description="Window start, ISO 8601 (default: end - 7 days)."),
    OpenApiParameter("end", OpenApiTypes.DATETIME, description="Window end, exclusive (default: now)."),
]


def _window(request: Request) -> tuple[datetime, datetime]:
    start, end = window_params(request.query_params, DEFAULT_WINDOW)
    if end <= start:
        raise ValidationError({"end": ["end must be after start."]})
    if end - start > MAX_WINDOW:
        raise ValidationError({"start": [f"The window can be at most {MAX_WINDOW.days} days."]})
    return start, end


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # thresholds and shares, not money
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json(item) for item in value]
    return value


def example_url(project: Project, example: Example) -> str:
    return reverse("pages:trace", kwargs={"slug": project.slug, "trace_id": example.trace_id}) + f"#span-{example.id}"


class ExampleSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    span_id = serializers.CharField()
    start_time = serializers.DateTimeField()
    name = serializers.CharField()
    url = serializers.CharField(help_text="The call on its trace's page.")


class ItemSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=STATUS_VALUES)
    summary = serializers.CharField()
    value = serializers.FloatField(allow_null=True, help_text="What was measured, in the threshold's unit.")
    threshold = serializers.FloatField(allow_null=True)
    evidence = serializers.DictField()
    examples = ExampleSerializer(many=True)


class ScorecardSerializer(serializers.Serializer):
    project = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    calls = serializers.IntegerField(help_text="Model calls in the window; no items without any.")
    status = serializers.ChoiceField(choices=STATUS_VALUES, help_text="The worst item's.")
    counts = serializers.DictField(child=serializers.IntegerField())
    items = ItemSerializer(many=True)


class ReadinessView(APIView):
    @extend_schema(operation_id="readiness_scorecard", summary="The readiness scorecard over a window",
                   description="Each item of the production checklist, pass, warn or fail on the project's "
                               "thresholds, with the numbers and example calls.",
                   parameters=_WINDOW, responses={200: ScorecardSerializer}, **_TAGS)
    def get(self, request: Request) -> Response:
        start, end = _window(request)
        access = api_project_access(request, Capability.VIEW_TRACES)
        project = access.project
        card = scorecard_get(project=project, start=start, end=end, now=datetime.now(UTC))
        return Response({
            "project": project.slug, "start": _iso(start), "end": _iso(end), "calls": card.calls,
            "status": card.status.value, "counts": card.counts,
            "items": [{
                "key": item.key, "title": item.title, "status": item.status.value, "summary": item.summary,
                "value": item.value, "threshold": _json(item.threshold), "evidence": _json(item.evidence),
                "examples": [{"trace_id": e.trace_id, "span_id": e.span_id, "start_time": _iso(e.start_time),
                              "name": e.name, "url": example_url(project, e)} for e in item.examples],
            } for item in card.items],
        })


class ReliabilitySettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReliabilitySettings
        fields = [*EDITABLE, "updated_at"]
        read_only_fields = ["updated_at"]


class ReliabilitySettingsView(APIView):
    """Loop limits and scorecard thresholds: everyone in the project reads them; admins and
    engineers (who manage alerts) change them."""

    @extend_schema(operation_id="readiness_settings_retrieve", parameters=[PROJECT_PARAMETER],
                   responses={200: ReliabilitySettingsSerializer}, **_TAGS)
    def get(self, request: Request) -> Response:
        access = api_project_access(request, Capability.VIEW_TRACES)
        return Response(ReliabilitySettingsSerializer(reliability_settings_get(project=access.project)).data)

    @extend_schema(operation_id="readiness_settings_update", summary="Change loop limits or scorecard thresholds",
                   parameters=[PROJECT_PARAMETER], request=ReliabilitySettingsSerializer,
                   responses={200: ReliabilitySettingsSerializer}, **_TAGS)
    def patch(self, request: Request) -> Response:
        access = api_project_access(request, Capability.MANAGE_ALERTS)
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": ["Send a JSON object of the settings to change."]})
        unknown = sorted(set(request.data) - set(EDITABLE))
        if unknown:
            raise ValidationError({unknown[0]: [f"Not a setting; settings are: {', '.join(EDITABLE)}."]})
        current = reliability_settings_get(project=access.project)
        serializer = ReliabilitySettingsSerializer(current, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        service_call(reliability_settings_update, project=access.project, actor=user_or_none(request),
                     **serializer.validated_data)
        return Response(ReliabilitySettingsSerializer(reliability_settings_get(project=access.project)).data)


class LoopSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    start_time = serializers.DateTimeField()
    loop_flagged_at = serializers.DateTimeField()
    loop_reasons = serializers.ListField(child=serializers.CharField())
    repeated_prompts = serializers.IntegerField(allow_null=True)
    span_count = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=24, decimal_places=12, coerce_to_string=True)


class LoopsView(APIView):
    @extend_schema(operation_id="loops_list", summary="Traces flagged as runaway loops",
                   description="Flagged within the window, most recent first (at most 100).",
                   parameters=_WINDOW, responses={200: LoopSerializer(many=True)}, **_TAGS)
    def get(self, request: Request) -> Response:
        start, end = _window(request)
        access = api_project_access(request, Capability.VIEW_TRACES)
        loops = loops_list(project=access.project, start=start, end=end, limit=100)
        return Response(LoopSerializer(loops, many=True).data)
