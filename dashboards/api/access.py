"""Which project an API request reads, and what it may see there.

An API key reads its own project. A logged-in user names the project with `?project=<slug>`
and gets what their role allows; someone outside its organization gets 404.
"""

from __future__ import annotations

from rest_framework.exceptions import NotFound, ParseError, PermissionDenied
from rest_framework.request import Request

from observatory.tenancy.models import ApiKey, Project
from observatory.tenancy.roles import API_KEY_ROLE, Capability, role_can
from observatory.tenancy.selectors import ProjectAccess, role_for_project


def api_project_access(request: Request, capability: Capability = Capability.VIEW_TRACES) -> ProjectAccess:
    if isinstance(request.auth, ApiKey):
        access = ProjectAccess(project=request.auth.project, role=API_KEY_ROLE)
    else:
        slug = request.query_params.get("project")
        if not slug:
            raise ParseError("Name the project with ?project=<slug> (or authenticate with the project's API key).")
        project = Project.objects.select_related("organization").filter(slug=slug).first()
        role = None if project is None else role_for_project(user=request.user, project=project)
        if project is None or role is None:
            raise NotFound("No such project.")
        access = ProjectAccess(project=project, role=role)
    if not role_can(access.role, capability):
        raise PermissionDenied(f"Your role ({access.role}) does not allow this.")
    return access
