from __future__ import annotations

from django.db.models import QuerySet

from observatory.audit.models import AuditEvent
from observatory.tenancy.models import Organization


def audit_events_recent(*, organization: Organization, limit: int = 25) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(organization=organization).select_related("project").order_by(
        "-created_at", "-id")[:limit]
