"""Changing a project's loop limits and readiness thresholds (audited like other settings)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from observatory.audit.services import audit_record
from observatory.reliability.models import EDITABLE, ReliabilitySettings
from observatory.tenancy.models import Project


@transaction.atomic
def reliability_settings_update(*, project: Project, actor, **values: Any) -> dict[str, tuple]:
    """Change any of models.EDITABLE; returns {field: (old, new)} for those that changed.
    Raises ValidationError naming each invalid field, TypeError for a name that is not a setting."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not a reliability setting: {', '.join(sorted(unknown))}")
    settings, _ = ReliabilitySettings.objects.select_for_update().get_or_create(project=project)
    old = {name: getattr(settings, name) for name in values}
    for name, value in values.items():
        setattr(settings, name, value)
    settings.full_clean()
    changes = {name: (old[name], getattr(settings, name)) for name in values if getattr(settings, name) != old[name]}
    if not changes:
        return {}
    settings.save()
    audit_record(actor=actor, organization=project.organization, project=project, action="reliability.update",
                 target=project.slug, details={name: [str(a), str(b)] for name, (a, b) in changes.items()})
    return changes
