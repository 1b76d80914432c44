"""Shared shape of the budget and alert-rule endpoints: objects of one project, read with one
capability and written with another, every write going through a service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.exceptions import ValidationError

from dashboards.api.access import api_project_access
from observatory.notifications.recipients import recipient_masked
from observatory.tenancy.roles import Capability
from observatory.tenancy.selectors import ProjectAccess

PROJECT_PARAMETER = OpenApiParameter("project", str, required=False,
                                     description="Project slug (logged-in users; an API key implies its project).")
_READS = ("GET", "HEAD", "OPTIONS")


def service_call(function: Callable[..., Any], **kwargs: Any) -> Any:
    """Run a service; its model validation errors become a 400 naming the field."""
    try:
        return function(**kwargs)
    except DjangoValidationError as error:
        raise ValidationError(error.message_dict if hasattr(error, "error_dict") else {"detail": error.messages}) \
            from None


def user_or_none(request) -> Any:
    user = request.user
    return user if getattr(user, "pk", None) is not None else None


@dataclass(frozen=True)
class WriteServices:
    """create(project=, created_by=, **fields), update(<argument>=object, actor=, **fields) and
    delete(<argument>=object, actor=); created_by and actor are who is recorded in the audit log."""

    create: Callable[..., Any]
    update: Callable[..., Any]
    delete: Callable[..., Any]
    argument: str


class ProjectScopedMixin:
    """`read_capability` for GET, `write_capability` for the rest; objects of the request's
    project only (another project's id is a 404, never a 403); writes through `services`."""

    read_capability: Capability
    write_capability: Capability
    services: WriteServices
    ordering: tuple[str, ...] = ("pk",)

    def perform_create(self, serializer) -> None:
        serializer.instance = service_call(self.services.create, project=self.access().project,
                                           created_by=user_or_none(self.request), **serializer.validated_data)

    def perform_update(self, serializer) -> None:
        serializer.instance = service_call(self.services.update, **{self.services.argument: serializer.instance},
                                           actor=user_or_none(self.request), **serializer.validated_data)

    def perform_destroy(self, instance) -> None:
        self.services.delete(**{self.services.argument: instance}, actor=user_or_none(self.request))

    def access(self) -> ProjectAccess:
        if not hasattr(self, "_project_access"):
            writing = self.request.method not in _READS
            self._project_access = api_project_access(
                self.request, self.write_capability if writing else self.read_capability
            )
        return self._project_access

    def get_queryset(self):
        return self.serializer_class.Meta.model.objects.filter(project=self.access().project).select_related(
            "project"
        ).order_by(*self.ordering)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request to read
            return context
        context["access"] = self.access()
        return context


class MaskedRecipientsMixin:
    """A serializer that shows webhook URLs masked to members without `manage_capability`."""

    manage_capability: Capability

    def to_representation(self, instance) -> dict[str, Any]:
        data = super().to_representation(instance)
        access = self.context.get("access")
        if access is not None and not access.can(self.manage_capability):
            data["recipients"] = [recipient_masked(value) for value in data["recipients"]]
        return data


def list_schema(*, tag: str, read: str, create: str):
    return extend_schema_view(get=extend_schema(parameters=[PROJECT_PARAMETER], summary=read, tags=[tag]),
                              post=extend_schema(parameters=[PROJECT_PARAMETER], summary=create, tags=[tag]))


def detail_schema(*, tag: str, update: str | None = None):
    def operation(summary: str | None = None):
        return extend_schema(parameters=[PROJECT_PARAMETER], summary=summary, tags=[tag])

    return extend_schema_view(get=operation(), put=operation(update), patch=operation(update), delete=operation())
