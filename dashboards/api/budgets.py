"""/api/v1/budgets: a project's budgets with their burn (read with view_costs, write with
manage_budgets), and /api/v1/spend-digest: the logged-in member's daily digest subscription."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import generics, serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboards.api.access import api_project_access
from dashboards.api.scoped import (
    PROJECT_PARAMETER,
    MaskedRecipientsMixin,
    ProjectScopedMixin,
    WriteServices,
    detail_schema,
    list_schema,
    user_or_none,
)
from observatory.budgets.digest import digest_subscribe
from observatory.budgets.models import (
    AMOUNT_DIGITS,
    AMOUNT_PLACES,
    DEFAULT_THRESHOLDS,
    Budget,
    DigestSubscription,
    thresholds_clean,
)
from observatory.budgets.selectors import budget_burn
from observatory.budgets.services import budget_create, budget_delete, budget_update
from observatory.notifications.recipients import recipients_clean
from observatory.tenancy.roles import Capability

_MONEY = {"max_digits": 30, "decimal_places": 12}


class BurnSerializer(serializers.Serializer):
    period_start = serializers.DateTimeField(help_text="Start of the current period, in the project's time zone.")
    period_end = serializers.DateTimeField()
    spent = serializers.DecimalField(**_MONEY, help_text="USD spent so far this period (exact).")
    share = serializers.DecimalField(max_digits=20, decimal_places=6, help_text="spent / amount (0.8 is 80 %).")
    remaining = serializers.DecimalField(**_MONEY)
    calls = serializers.IntegerField()
    unpriced_calls = serializers.IntegerField(help_text="Calls to models without a known price: not in `spent`.")
    rate_per_hour = serializers.DecimalField(**_MONEY, help_text="USD per hour over [rate_since, now).")
    rate_since = serializers.DateTimeField()
    projected_spend = serializers.DecimalField(**_MONEY, help_text="At the end of the period, at this rate.")
    exhausts_at = serializers.DateTimeField(allow_null=True,
                                            help_text="When the amount runs out at this rate; null if not this period.")
    exhausted = serializers.BooleanField()
    thresholds_crossed = serializers.ListField(child=serializers.IntegerField())


def recipients_validate(values: list[str]) -> list[str]:
    try:
        return recipients_clean(values)
    except DjangoValidationError as error:
        raise ValidationError(error.messages) from None


class BudgetSerializer(MaskedRecipientsMixin, serializers.ModelSerializer):
    manage_capability = Capability.MANAGE_BUDGETS

    amount = serializers.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES,
                                      help_text="USD per period, more than 0.")
    thresholds = serializers.ListField(
        child=serializers.IntegerField(), required=False,
        help_text=f"Percent of the amount, 1 to 1000 (default {list(DEFAULT_THRESHOLDS)}).",
    )
    recipients = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=True),
                                       required=False,
                                       help_text="Email addresses and http(s) webhook URLs (Slack-compatible).")
    burn = serializers.SerializerMethodField()

    class Meta:
        model = Budget
        fields = ["id", "name", "scope", "scope_value", "period", "amount", "thresholds", "recipients", "hard_cap",
                  "notify_forecast", "enabled", "burn", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_amount(self, value):
        if value <= 0:
            raise ValidationError("The amount must be more than $0.")
        return value

    def validate_thresholds(self, value: list[int]) -> list[int]:
        try:
            return thresholds_clean(value)
        except DjangoValidationError as error:
            raise ValidationError(error.messages) from None

    def validate_recipients(self, value: list[str]) -> list[str]:
        return recipients_validate(value)

    @extend_schema_field(BurnSerializer)
    def get_burn(self, budget: Budget) -> dict[str, Any]:
        burn = budget_burn(budget=budget)
        return BurnSerializer({
            "period_start": burn.period.start, "period_end": burn.period.end, "spent": burn.spent,
            "share": round(burn.share, 6), "remaining": burn.remaining, "calls": burn.calls,
            "unpriced_calls": burn.unpriced_calls, "rate_per_hour": round(burn.rate_per_hour, 12),
            "rate_since": burn.rate_since, "projected_spend": round(burn.projected_spend, 12),
            "exhausts_at": burn.exhausts_at, "exhausted": burn.exhausted,
            "thresholds_crossed": [threshold for threshold in budget.thresholds if burn.crossed(threshold)],
        }).data


class _Budgets(ProjectScopedMixin):
    serializer_class = BudgetSerializer
    read_capability = Capability.VIEW_COSTS
    write_capability = Capability.MANAGE_BUDGETS
    services = WriteServices(create=budget_create, update=budget_update, delete=budget_delete, argument="budget")
    ordering = ("name", "pk")


_TAGS = {"tags": ["budgets"]}


@list_schema(tag="budgets", read="Budgets with their burn", create="Create a budget")
class BudgetListView(_Budgets, generics.ListCreateAPIView):
    pagination_class = None


@detail_schema(tag="budgets")
class BudgetDetailView(_Budgets, generics.RetrieveUpdateDestroyAPIView):
    pass


_SUBSCRIPTION = inline_serializer("SpendDigestSubscription", {"subscribed": serializers.BooleanField()})


class SpendDigestView(APIView):
    """The logged-in member's subscription to the project's daily spend digest."""

    def _access(self, request: Request):
        access = api_project_access(request, Capability.VIEW_COSTS)
        if user_or_none(request) is None:
            raise PermissionDenied("The digest is sent to people: log in to subscribe; an API key cannot.")
        return access

    @extend_schema(operation_id="spend_digest_retrieve", parameters=[PROJECT_PARAMETER], responses=_SUBSCRIPTION,
                   **_TAGS)
    def get(self, request: Request) -> Response:
        access = self._access(request)
        subscribed = DigestSubscription.objects.filter(project=access.project, user=request.user).exists()
        return Response({"subscribed": subscribed})

    @extend_schema(operation_id="spend_digest_subscribe", parameters=[PROJECT_PARAMETER], request=None,
                   responses=_SUBSCRIPTION, summary="Get the daily spend digest by email", **_TAGS)
    def put(self, request: Request) -> Response:
        access = self._access(request)
        return Response({"subscribed": digest_subscribe(project=access.project, user=request.user, subscribed=True)})

    @extend_schema(operation_id="spend_digest_unsubscribe", parameters=[PROJECT_PARAMETER], request=None,
                   responses=_SUBSCRIPTION, **_TAGS)
    def delete(self, request: Request) -> Response:
        access = self._access(request)
        return Response({"subscribed": digest_subscribe(project=access.project, user=request.user, subscribed=False)})
