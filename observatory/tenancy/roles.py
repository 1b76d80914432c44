"""Roles in an organization and what each may do.

Every page and API asks `role_can(role, Capability.X)`; nothing else decides access, so the
matrix below is the whole permission model.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    ENGINEER = "engineer", "Engineer"
    FINANCE = "finance", "Finance"
    VIEWER = "viewer", "Viewer"


class Capability(StrEnum):
    VIEW_TRACES = "view_traces"  # trace and call metadata: names, timings, tokens, errors
    VIEW_CONTENT = "view_content"  # prompt and completion text
    VIEW_COSTS = "view_costs"
    EXPORT = "export"
    MANAGE_KEYS = "manage_keys"
    MANAGE_BUDGETS = "manage_budgets"
    MANAGE_ALERTS = "manage_alerts"
    MANAGE_PRICES = "manage_prices"
    MANAGE_PROJECT = "manage_project"  # settings, redaction, retention, new projects
    MANAGE_MEMBERS = "manage_members"


ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.ADMIN: frozenset(Capability),
    Role.ENGINEER: frozenset(
        {
            Capability.VIEW_TRACES,
            Capability.VIEW_CONTENT,
            Capability.VIEW_COSTS,
            Capability.EXPORT,
            Capability.MANAGE_KEYS,
            Capability.MANAGE_BUDGETS,
            Capability.MANAGE_ALERTS,
            Capability.MANAGE_PRICES,
        }
    ),
    # Finance reviews and controls spend; it never sees what users asked or were told.
    Role.FINANCE: frozenset(
        {Capability.VIEW_TRACES, Capability.VIEW_COSTS, Capability.EXPORT, Capability.MANAGE_BUDGETS}
    ),
    Role.VIEWER: frozenset({Capability.VIEW_TRACES, Capability.VIEW_COSTS}),
}


# What a project's API key may do through the read API: read everything in its project, as
# Langfuse keys can, but manage nothing.
API_KEY_ROLE = "api_key"
ROLE_CAPABILITIES[API_KEY_ROLE] = frozenset(
    {Capability.VIEW_TRACES, Capability.VIEW_CONTENT, Capability.VIEW_COSTS, Capability.EXPORT}
)


def role_can(role: str | None, capability: Capability) -> bool:
    if role is None:
        return False
    return capability in ROLE_CAPABILITIES.get(role, frozenset())
