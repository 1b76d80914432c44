"""Who changed what in an organization's settings: one row per change, never updated.

Rows outlive what they describe (a revoked key, a removed member, a deleted project), so
they copy the actor's email and a description of the target instead of relying on foreign keys.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from observatory.tenancy.models import Organization, Project


class AuditEvent(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_email = models.CharField(max_length=254, blank=True)
    # A dotted verb, e.g. "api_key.revoke", "member.role_change".
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=300, blank=True)
    # What changed (old and new values); never a secret.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"], name="audit_recent_idx")]

    def __str__(self) -> str:
        return f"{self.actor_email or 'system'} {self.action} {self.target}"
