"""GET /api/v1/calls and GET /api/v1/traces/<trace_id>."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboards.api.access import api_project_access
from observatory.calls.models import Call, CallStatus, Score, Trace
from observatory.calls.selectors import CallFilters, InvalidCursor, Position, calls_list, trace_get
from observatory.tenancy.roles import Capability

MAX_PAGE = 500


class CallQuerySerializer(serializers.Serializer):
    project = serializers.SlugField(required=False, help_text="Project slug (logged-in users; keys read their own).")
    start = serializers.DateTimeField(required=False, help_text="Calls that started at or after (ISO 8601).")
    end = serializers.DateTimeField(required=False, help_text="Calls that started before (ISO 8601).")
    trace_id = serializers.CharField(required=False, max_length=128)
    model = serializers.CharField(required=False, max_length=256)
    status = serializers.ChoiceField(required=False, choices=CallStatus.values)
    finish_reason = serializers.CharField(required=False, max_length=256)
    user_id = serializers.CharField(required=False, max_length=256)
    session_id = serializers.CharField(required=False, max_length=256)
    feature = serializers.CharField(required=False, max_length=256)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE, default=50)
    cursor = serializers.CharField(required=False, help_text="next_cursor of the previous page.")

    def validate(self, attrs: dict) -> dict:
        if "start" in attrs and "end" in attrs and attrs["end"] <= attrs["start"]:
            raise ValidationError({"end": "must be after start."})
        return attrs


class CallSerializer(serializers.ModelSerializer):
    class Meta:
        model = Call
        exclude = ["project"]


class TraceSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()

    class Meta:
        model = Trace
        exclude = ["project", "id"]

    def get_status(self, trace: Trace) -> str:
        return CallStatus.ERROR if trace.has_error else CallStatus.OK


class ScoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Score
        exclude = ["project", "id"]


class TraceCallSerializer(CallSerializer):
    input = serializers.JSONField(read_only=True, allow_null=True)
    output = serializers.JSONField(read_only=True, allow_null=True)
    large_metadata = serializers.JSONField(read_only=True, allow_null=True)
    content_hidden = serializers.BooleanField(read_only=True)


class CallListView(APIView):
    @extend_schema(
        operation_id="calls_list",
        tags=["calls"],
        parameters=[CallQuerySerializer],
        responses=inline_serializer(
            "CallPage",
            {"results": CallSerializer(many=True), "next_cursor": serializers.CharField(allow_null=True)},
        ),
    )
    def get(self, request: Request) -> Response:
        access = api_project_access(request, Capability.VIEW_TRACES)
        query = CallQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        try:
            after = Position.decode(params["cursor"]) if params.get("cursor") else None
        except InvalidCursor as error:
            raise ValidationError({"cursor": str(error)}) from None
        filters = CallFilters(**{name: params.get(name) for name in CallFilters.__dataclass_fields__})
        page, position = calls_list(project=access.project, filters=filters, after=after, limit=params["limit"])
        return Response(
            {
                "results": CallSerializer(page, many=True).data,
                "next_cursor": position.encode() if position else None,
            }
        )


class TraceView(APIView):
    @extend_schema(
        operation_id="trace_retrieve",
        tags=["calls"],
        parameters=[OpenApiParameter("project", str, required=False, description="Project slug (logged-in users).")],
        responses=inline_serializer(
            "TraceDetail",
            {
                "trace": TraceSerializer(),
                "calls": TraceCallSerializer(many=True),
                "scores": ScoreSerializer(many=True),
            },
        ),
    )
    def get(self, request: Request, trace_id: str) -> Response:
        access = api_project_access(request, Capability.VIEW_TRACES)
        with_content = access.can(Capability.VIEW_CONTENT)
        detail = trace_get(project=access.project, trace_id=trace_id, with_content=with_content)
        if detail is None:
            raise NotFound("No such trace in this project.")
        calls = []
        for call, data in zip(detail.calls, CallSerializer(detail.calls, many=True).data, strict=True):
            content = detail.content.get(call.id)
            data["input"] = content.input if content else None
            data["output"] = content.output if content else None
            data["large_metadata"] = content.metadata if content else None
            # Roles that may not read prompts see that content exists, not what it says.
            data["content_hidden"] = not with_content
            calls.append(data)
        trace = TraceSerializer(detail.trace).data
        if not with_content:
            # The trace's own input, output and metadata are content too (Langfuse traces carry them).
            trace.update(input=None, output=None, metadata=None)
        trace["content_hidden"] = not with_content
        scores = ScoreSerializer(detail.scores, many=True).data
        if not with_content:
            for score in scores:
                score["comment"] = None  # feedback in users' own words
        return Response({"trace": trace, "calls": calls, "scores": scores})
