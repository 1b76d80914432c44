"""The Settings page: the organization's projects and members, the project's keys, prices
and recent changes. Each section is read only for roles that may see it."""

from __future__ import annotations

from dataclasses import dataclass, field

from observatory.audit.models import AuditEvent
from observatory.audit.selectors import audit_events_recent
from observatory.pricing.models import PriceOverride
from observatory.tenancy.models import ApiKey, Membership, Project
from observatory.tenancy.roles import Capability
from observatory.tenancy.selectors import ProjectAccess


@dataclass
class SettingsData:
    projects: list[Project]
    members: list[Membership]
    keys: list[ApiKey] = field(default_factory=list)
    overrides: list[PriceOverride] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)


def settings_get(*, access: ProjectAccess) -> SettingsData:
    project = access.project
    data = SettingsData(
        projects=list(Project.objects.filter(organization=project.organization).order_by("name")),
        members=list(Membership.objects.filter(organization=project.organization).select_related("user")
                     .order_by("user__email")),
    )
    if access.can(Capability.MANAGE_KEYS):
        data.keys = list(ApiKey.objects.filter(project=project).select_related("created_by")
                         .order_by("revoked_at", "-created_at"))
    if access.can(Capability.VIEW_COSTS):
        data.overrides = list(PriceOverride.objects.filter(project=project).order_by("-effective_from", "-id"))
    if access.can(Capability.MANAGE_PROJECT) or access.can(Capability.MANAGE_MEMBERS):
        data.audit = list(audit_events_recent(organization=project.organization))
    return data
