"""/api/v1/price-overrides: a project's own prices (read with costs, write with manage_prices)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, serializers

from dashboards.api.access import api_project_access
from observatory.pricing.models import PriceOverride
from observatory.pricing.services import price_override_create, price_override_delete, price_override_update
from observatory.tenancy.roles import Capability

_PROJECT = OpenApiParameter("project", str, required=False, description="Project slug (logged-in users).")


class PriceOverrideSerializer(serializers.ModelSerializer):
    effective_from = serializers.DateTimeField(required=False, help_text="Default: now.")

    class Meta:
        model = PriceOverride
        fields = [
            "id",
            "model_pattern",
            "provider",
            "input_per_mtok",
            "cached_input_per_mtok",
            "cache_write_per_mtok",
            "output_per_mtok",
            "effective_from",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]


class _ProjectScoped:
    serializer_class = PriceOverrideSerializer

    def _access(self):
        writing = self.request.method not in ("GET", "HEAD", "OPTIONS")
        return api_project_access(self.request, Capability.MANAGE_PRICES if writing else Capability.VIEW_COSTS)

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        # Access before the body is validated: a stranger's POST is a 404, like everything else
        # they try, never a 400 listing the fields a valid one needs.
        self._access()

    def get_queryset(self):
        return PriceOverride.objects.filter(project=self._access().project).order_by("-effective_from", "-id")


@extend_schema_view(get=extend_schema(parameters=[_PROJECT], tags=["prices"]),
                    post=extend_schema(parameters=[_PROJECT], tags=["prices"]))
class PriceOverrideListView(_ProjectScoped, generics.ListCreateAPIView):
    pagination_class = None

    def perform_create(self, serializer) -> None:
        # Through the service, so that the change is audited like one made on the settings page.
        serializer.instance = price_override_create(project=self._access().project, actor=self.request.user,
                                                    **serializer.validated_data)


@extend_schema_view(
    get=extend_schema(parameters=[_PROJECT], tags=["prices"]),
    put=extend_schema(parameters=[_PROJECT], tags=["prices"]),
    patch=extend_schema(parameters=[_PROJECT], tags=["prices"]),
    delete=extend_schema(parameters=[_PROJECT], tags=["prices"]),
)
class PriceOverrideDetailView(_ProjectScoped, generics.RetrieveUpdateDestroyAPIView):
    def perform_update(self, serializer) -> None:
        serializer.instance = price_override_update(override=serializer.instance, actor=self.request.user,
                                                    **serializer.validated_data)

    def perform_destroy(self, instance: PriceOverride) -> None:
        price_override_delete(override=instance, actor=self.request.user)
