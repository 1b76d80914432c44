"""Who owns what: organizations hold projects and members; projects hold API keys.

Every table that stores telemetry carries a project id, and every read is scoped by one.
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from observatory.tenancy.roles import Role


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone (for example Europe/Paris).")


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class RedactionMode(models.TextChoices):
    STORE = "store", "Store content as sent"
    MASK = "mask", "Mask personal data and secrets"
    DROP = "drop", "Do not store content"


class Project(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    # Globally unique so that URLs and the CLI can name a project by slug alone.
    slug = models.SlugField(max_length=64, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    redaction_mode = models.CharField(max_length=8, choices=RedactionMode.choices, default=RedactionMode.MASK)
    # Shorter than the deployment's RETENTION_DAYS to keep this project's raw calls for less time.
    retention_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    # Bumped whenever the project's price overrides change, so that ingest processes can cache
    # them and still see a change on the next request.
    prices_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_one_per_user"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_known"),
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.organization}"


class ApiKey(models.Model):
    """A project's credential: a public id (pk-…) and a secret (sk-…) shown once.

    Only a SHA-256 digest of the secret is stored. The secret is 256 random bits, so a
    fast hash is enough and lets authentication be a single indexed lookup.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    public_id = models.CharField(max_length=64, unique=True)
    secret_hash = models.CharField(max_length=64, unique=True)
    # The first characters of the secret, so people can tell keys apart in the UI.
    secret_hint = models.CharField(max_length=16)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Ingest requests per second; empty uses INGEST_RATE_LIMIT_PER_SECOND, 0 means unlimited.
    rate_limit_per_second = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
