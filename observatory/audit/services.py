"""Recording changes to settings. Every write service for organizations, projects, members,
API keys, prices, budgets and alert rules calls `audit_record` in its own transaction, so a change and its record
are committed together or not at all."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model

from observatory.audit.models import AuditEvent
from observatory.tenancy.models import Organization, Project

logger = logging.getLogger("observatory.audit")


def audit_record(*, actor, organization: Organization, action: str, target: str = "",
                 project: Project | None = None, details: dict[str, Any] | None = None) -> AuditEvent:
    """Record that `actor` (a user; None or anonymous for the system) did `action` to `target`."""
    user = actor if isinstance(actor, get_user_model()) else None
    # Another authenticated principal (an API key) is named by its description.
    label = user.email if user else (str(actor) if getattr(actor, "is_authenticated", False) else "")
    event = AuditEvent.objects.create(
        organization=organization, project=project, actor=user, actor_email=label,
        action=action, target=target[:300], details=details or {},
    )
    logger.info("audit %s", action, extra={"audit_action": action, "organization": organization.slug,
                                           "project": project.slug if project else None,
                                           "actor": event.actor_email or None, "target": event.target})
    return event
