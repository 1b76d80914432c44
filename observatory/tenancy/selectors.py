"""Reads that decide who may see which project."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.core.exceptions import PermissionDenied
from django.http import Http404

from observatory.tenancy.models import Membership, Project
from observatory.tenancy.roles import Capability, role_can


@dataclass(frozen=True)
class ProjectAccess:
    """A project as one user sees it: with that user's role."""

    project: Project
    role: str

    def can(self, capability: Capability) -> bool:
        return role_can(self.role, capability)


def projects_for_user(*, user) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    return (
        Project.objects.filter(organization__memberships__user=user)
        .select_related("organization")
        .order_by("organization__name", "name")
    )


def role_for_project(*, user, project: Project) -> str | None:
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(organization_id=project.organization_id, user=user)
        .values_list("role", flat=True)
        .first()
    )


def project_access_get(*, user, slug: str, capability: Capability = Capability.VIEW_TRACES) -> ProjectAccess:
    """The project and the user's role in it.

    404 when the user is not a member, so that outsiders cannot learn that a project exists;
    403 when a member's role lacks the capability.
    """
    project = Project.objects.select_related("organization").filter(slug=slug).first()
    role = None if project is None else role_for_project(user=user, project=project)
    if project is None or role is None:
        raise Http404("No such project.")
    if not role_can(role, capability):
        raise PermissionDenied(f"Your role ({role}) does not allow this.")
    return ProjectAccess(project=project, role=role)
