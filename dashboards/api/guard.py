"""GET /api/v1/guard: may the application make an LLM call, or is a hard-capped budget spent?

Answered with the application's API key, from spend the budget jobs record and a short cache
(no spend query on the request path); see observatory.budgets.selectors.budget_guard_check
and the README for how stale an answer can be.
"""

from __future__ import annotations

from datetime import UTC, datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from observatory.budgets.selectors import GuardVerdict, budget_guard_check
from observatory.tenancy.authentication import MISSING_AUTHORIZATION, ApiKeyAuthentication
from observatory.tenancy.throttling import ApiKeyRateThrottle

_ATTRIBUTES = ("model", "provider", "feature", "environment", "user")
_PARAMETERS = (*_ATTRIBUTES, "tag", "budget")


class GuardRateThrottle(ApiKeyRateThrottle):
    scope = "guard"


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _verdict(verdict: GuardVerdict) -> dict:
    budget = verdict.budget
    return {
        "id": budget.id, "name": budget.name, "scope": budget.scope, "scope_value": budget.scope_value,
        "period": budget.period, "amount_usd": str(budget.amount), "spent_usd": str(verdict.spent),
        "remaining_usd": str(verdict.remaining), "period_start": _time(verdict.period.start),
        "period_end": _time(verdict.period.end), "exhausted": verdict.exhausted, "spent_at": _time(budget.spent_at),
    }


_BUDGET_FIELDS = {
    "id": serializers.IntegerField(), "name": serializers.CharField(), "scope": serializers.CharField(),
    "scope_value": serializers.CharField(), "period": serializers.CharField(),
    "amount_usd": serializers.DecimalField(max_digits=14, decimal_places=2),
    "spent_usd": serializers.DecimalField(max_digits=30, decimal_places=12),
    "remaining_usd": serializers.DecimalField(max_digits=30, decimal_places=12),
    "period_start": serializers.DateTimeField(), "period_end": serializers.DateTimeField(),
    "exhausted": serializers.BooleanField(),
    "spent_at": serializers.DateTimeField(allow_null=True, help_text="When this spend was measured."),
}
_ANSWER = inline_serializer("GuardAnswer", {
    "allowed": serializers.BooleanField(help_text="False when a hard-capped budget covering the call is spent."),
    "remaining_usd": serializers.DecimalField(max_digits=30, decimal_places=12, allow_null=True,
                                              help_text="Least remaining of the covering budgets; null if none."),
    "period_end": serializers.DateTimeField(allow_null=True, help_text="When that budget's period ends."),
    "budgets": inline_serializer("GuardBudget", _BUDGET_FIELDS, many=True),
})


class GuardView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [GuardRateThrottle]

    def permission_denied(self, request: Request, message=None, code=None):
        if not request.successful_authenticator:
            raise NotAuthenticated(MISSING_AUTHORIZATION)
        super().permission_denied(request, message=message, code=code)

    @extend_schema(
        operation_id="budget_guard",
        tags=["budgets"],
        summary="May this call go ahead? (hard-capped budgets)",
        description=(
            "Describe the call you are about to make; every enabled hard-capped budget whose scope covers it is "
            "checked (a budget scoped on an attribute you leave out does not cover the call). `allowed` is false "
            "once one of them is spent. Answers come from spend measured every BUDGET_GUARD_REFRESH_SECONDS and "
            "cached up to BUDGET_GUARD_CACHE_SECONDS, so they can be that far behind; a new period is seen at once."
        ),
        parameters=[
            *[OpenApiParameter(name, OpenApiTypes.STR, description=f"The call's {name}.") for name in _ATTRIBUTES],
            OpenApiParameter("tag", OpenApiTypes.STR, many=True, explode=True,
                             description="A tag of the call (repeat, or comma-separate, for several)."),
            OpenApiParameter("budget", OpenApiTypes.INT, description="Check only this budget (by id)."),
        ],
        responses={200: _ANSWER},
        examples=[OpenApiExample("Spent", response_only=True, value={
            "allowed": False, "remaining_usd": "0.00", "period_end": "2026-12-01T00:00:00Z",
            "budgets": [{"id": 3, "name": "OpenAI monthly", "scope": "provider", "scope_value": "openai",
                         "period": "month", "amount_usd": "500.00", "spent_usd": "500.120000000000",
                         "remaining_usd": "0.00", "period_start": "2026-11-01T00:00:00Z",
                         "period_end": "2026-12-01T00:00:00Z", "exhausted": True,
                         "spent_at": "2026-11-19T14:05:10Z"}],
        })],
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        unknown = sorted(set(params) - set(_PARAMETERS))
        if unknown:
            raise ValidationError({unknown[0]: [f"Unknown parameter; use any of: {', '.join(_PARAMETERS)}."]})
        budget_id = None
        if params.get("budget"):
            try:
                budget_id = int(params["budget"])
            except ValueError:
                raise ValidationError({"budget": [f"{params['budget']!r} is not a budget id."]}) from None
        attributes: dict = {name: params[name] for name in _ATTRIBUTES if params.get(name)}
        attributes["tags"] = [tag.strip() for value in params.getlist("tag") for tag in value.split(",") if tag.strip()]
        answer = budget_guard_check(project=request.auth.project, attributes=attributes, budget_id=budget_id)
        binding = answer.binding
        return Response({
            "allowed": answer.allowed,
            "remaining_usd": None if binding is None else str(binding.remaining),
            "period_end": None if binding is None else _time(binding.period.end),
            "budgets": [_verdict(verdict) for verdict in answer.verdicts],
        })
