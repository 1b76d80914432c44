"""/api/v1/alert-rules (read with view_traces, write with manage_alerts), each rule's state
changes, and /api/v1/alerts: the alert history (every notification and its deliveries)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboards.api.access import api_project_access
from dashboards.api.budgets import recipients_validate
from dashboards.api.scoped import (
    PROJECT_PARAMETER,
    MaskedRecipientsMixin,
    ProjectScopedMixin,
    WriteServices,
    detail_schema,
    list_schema,
)
from observatory.alerts.models import AlertRule, AlertRuleChange
from observatory.alerts.selectors import rule_changes_list
from observatory.alerts.services import rule_create, rule_delete, rule_update
from observatory.notifications.models import Delivery, Notification, NotificationKind
from observatory.notifications.recipients import recipient_masked
from observatory.notifications.selectors import notifications_list
from observatory.tenancy.roles import Capability

MAX_HISTORY_PAGE = 200


def _reveals(access, notification: Notification) -> bool:
    """Webhook URLs are secrets: shown to those who may manage what sends to them."""
    if notification.rule_id is not None:
        return access.can(Capability.MANAGE_ALERTS)
    return access.can(Capability.MANAGE_BUDGETS)


class AlertRuleSerializer(MaskedRecipientsMixin, serializers.ModelSerializer):
    manage_capability = Capability.MANAGE_ALERTS

    recipients = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False,
                                       help_text="Email addresses and http(s) webhook URLs (Slack-compatible).")

    class Meta:
        model = AlertRule
        fields = ["id", "name", "kind", "scope", "scope_value", "window_minutes", "percentile", "threshold",
                  "min_calls", "dimension", "factor", "baseline_hours", "min_spend", "recipients", "renotify_minutes",
                  "muted_until", "enabled", "state", "state_changed_at", "last_value", "last_evaluated_at",
                  "last_notified_at", "created_at", "updated_at"]
        read_only_fields = ["id", "state", "state_changed_at", "last_value", "last_evaluated_at", "last_notified_at",
                            "created_at", "updated_at"]
        extra_kwargs = {
            "threshold": {"help_text": "latency: ms; error_rate, length_share and the *_rate kinds: percent "
                                       "(cache_hit_rate fires below it, the others above); spend: USD; "
                                       "loop: flagged traces in the window."},
            "window_minutes": {"help_text": "The sliding window the metric is measured over (1-1440)."},
        }

    def validate_recipients(self, value: list[str]) -> list[str]:
        return recipients_validate(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The model knows which fields each kind needs; check the rule as it would be saved.
        candidate = AlertRule(project=self.context["access"].project)
        if self.instance is not None:
            for field in self.Meta.fields:
                if field not in self.Meta.read_only_fields:
                    setattr(candidate, field, getattr(self.instance, field))
        for name, value in attrs.items():
            setattr(candidate, name, value)
        try:
            candidate.clean()
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from None
        return attrs


class _Rules(ProjectScopedMixin):
    serializer_class = AlertRuleSerializer
    read_capability = Capability.VIEW_TRACES
    write_capability = Capability.MANAGE_ALERTS
    services = WriteServices(create=rule_create, update=rule_update, delete=rule_delete, argument="rule")
    ordering = ("name", "pk")


_TAGS = {"tags": ["alerts"]}


@list_schema(tag="alerts", read="Alert rules and their state", create="Create an alert rule")
class AlertRuleListView(_Rules, generics.ListCreateAPIView):
    pagination_class = None


@detail_schema(tag="alerts", update="Update a rule (mute it with muted_until)")
class AlertRuleDetailView(_Rules, generics.RetrieveUpdateDestroyAPIView):
    pass


class AlertRuleChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertRuleChange
        fields = ["id", "from_state", "to_state", "value", "detail", "notified", "created_at"]


class AlertRuleChangesView(APIView):
    @extend_schema(operation_id="alert_rule_changes", parameters=[PROJECT_PARAMETER],
                   responses=AlertRuleChangeSerializer(many=True), summary="A rule's state changes, newest first",
                   **_TAGS)
    def get(self, request: Request, pk: int) -> Response:
        access = api_project_access(request, Capability.VIEW_TRACES)
        rule = AlertRule.objects.filter(project=access.project, pk=pk).first()
        if rule is None:
            raise NotFound("No such alert rule in this project.")
        return Response(AlertRuleChangeSerializer(rule_changes_list(rule=rule), many=True).data)


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = ["channel", "recipient", "status", "attempts", "sent_at", "last_error", "not_before"]


class NotificationSerializer(serializers.ModelSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "kind", "subject", "budget", "rule", "context", "suppressed", "created_at", "deliveries"]

    def to_representation(self, notification: Notification) -> dict[str, Any]:
        data = super().to_representation(notification)
        if not _reveals(self.context["access"], notification):
            for delivery in data["deliveries"]:
                delivery["recipient"] = recipient_masked(delivery["recipient"])
        return data


class HistoryQuerySerializer(serializers.Serializer):
    budget = serializers.IntegerField(required=False, help_text="Only notifications about this budget.")
    rule = serializers.IntegerField(required=False, help_text="Only notifications about this alert rule.")
    kind = serializers.ChoiceField(required=False, choices=NotificationKind.choices)
    before = serializers.IntegerField(required=False, help_text="Page: notifications older than this id.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_HISTORY_PAGE, default=50)


class AlertHistoryView(APIView):
    @extend_schema(operation_id="alert_history", parameters=[PROJECT_PARAMETER, HistoryQuerySerializer],
                   responses=NotificationSerializer(many=True),
                   summary="Alert history: every notification, newest first, with its delivery results", **_TAGS)
    def get(self, request: Request) -> Response:
        access = api_project_access(request, Capability.VIEW_COSTS)
        query = HistoryQuerySerializer(data={k: v for k, v in request.query_params.items() if k != "project"})
        query.is_valid(raise_exception=True)
        params = query.validated_data
        notifications = notifications_list(project=access.project, budget_id=params.get("budget"),
                                           rule_id=params.get("rule"), kind=params.get("kind"),
                                           before_id=params.get("before"), limit=params["limit"])
        return Response(NotificationSerializer(notifications, many=True, context={"access": access}).data)
