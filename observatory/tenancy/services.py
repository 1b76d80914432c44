"""Writes for organizations, projects, memberships and API keys.

Changes people make through the settings pages (or the CLI) are recorded in the audit log
in the same transaction (observatory.audit): `actor` is who made them, None for the system.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from observatory.audit.services import audit_record
from observatory.prepared import server_cursor, with_live_connection
from observatory.tenancy.models import ApiKey, Membership, Organization, Project
from observatory.tenancy.roles import Role

PUBLIC_ID_PREFIX = "pk-obs-"
SECRET_PREFIX = "sk-obs-"
# Writing last_used_at on every request would turn each ingest call into an extra UPDATE.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedApiKey:
    """A new key together with its secret, which exists only here and is never stored."""

    key: ApiKey
    secret: str


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def organization_get_or_create(*, name: str, slug: str | None = None) -> Organization:
    slug = slug or slugify(name)[:64] or "org"
    organization, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
    return organization


def project_create(
    *, organization: Organization, name: str, slug: str | None = None, time_zone: str = "UTC"
) -> Project:
    project = Project(
        organization=organization, name=name, slug=slug or slugify(name)[:64], time_zone=time_zone
    )
    project.full_clean()
    project.save()
    return project


def membership_set(*, organization: Organization, user, role: Role | str) -> Membership:
    """Give `user` the role in `organization`, creating the membership when missing."""
    membership, _ = Membership.objects.update_or_create(
        organization=organization, user=user, defaults={"role": Role(role)}
    )
    return membership


def user_get_or_create(*, email: str, password: str | None) -> tuple[object, bool]:
    """The user with this email, created with `password` if new. An existing password is kept."""
    User = get_user_model()
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email=email).first()
    if user is not None:
        return user, False
    return User.objects.create_user(email=email, password=password), True


@transaction.atomic
def api_key_create(*, project: Project, name: str, created_by=None) -> IssuedApiKey:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        project=project,
        name=name,
        public_id=PUBLIC_ID_PREFIX + secrets.token_hex(12),
        secret_hash=secret_digest(secret),
        secret_hint=secret[: len(SECRET_PREFIX) + 4],
        created_by=created_by,
    )
    audit_record(actor=created_by, organization=project.organization, project=project, action="api_key.create",
                 target=f"{name} ({key.public_id})")
    return IssuedApiKey(key=key, secret=secret)


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor=None) -> bool:
    """Revoke the key. Returns False when it was already revoked. Takes effect at once:
    authentication reads revoked_at on every request."""
    changed = ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now())
    key.refresh_from_db(fields=["revoked_at"])
    if changed:
        audit_record(actor=actor, organization=key.project.organization, project=key.project,
                     action="api_key.revoke", target=str(key))
    return changed == 1


@functools.cache
def _key_lookup() -> tuple[list[str], list[str], str]:
    key_fields = [field.attname for field in ApiKey._meta.concrete_fields]
    project_fields = [field.attname for field in Project._meta.concrete_fields]
    columns = [f"k.{name}" for name in key_fields] + [f"p.{name}" for name in project_fields]
    sql = (f"SELECT {', '.join(columns)} FROM tenancy_apikey k JOIN tenancy_project p ON p.id = k.project_id "
           "WHERE k.secret_hash = %s AND k.revoked_at IS NULL")
    return key_fields, project_fields, sql


def _active_key_with_project(digest: str, using: str = DEFAULT_DB_ALIAS) -> ApiKey | None:
    """One indexed query for the key and its project, built without the ORM's query compiler
    and prepared once per connection: this runs on every ingest request, where compiling and
    planning the query cost more than running it. Revocation is read on every request."""
    key_fields, project_fields, sql = _key_lookup()

    def lookup() -> tuple | None:
        with server_cursor(using) as cursor:
            cursor.execute(sql, [digest], prepare=True)
            return cursor.fetchone()

    row = with_live_connection(lookup, using)
    if row is None:
        return None
    key = ApiKey.from_db(using, key_fields, row[: len(key_fields)])
    key.project = Project.from_db(using, project_fields, row[len(key_fields) :])
    return key


def api_key_authenticate(*, secret: str, public_id: str | None = None) -> ApiKey | None:
    """The active key for a secret (Bearer) or for a public id and secret (Basic), else None."""
    if not secret or not secret.startswith(SECRET_PREFIX):
        return None
    key = _active_key_with_project(secret_digest(secret))
    if key is None:
        return None
    # Basic auth names the key twice; both halves must belong to the same key.
    if public_id is not None and not hmac.compare_digest(key.public_id.encode(), public_id.encode()):
        return None
    _api_key_touch(key)
    return key


def _api_key_touch(key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ApiKey.objects.filter(stale, pk=key.pk).update(last_used_at=now)
    key.last_used_at = now


@dataclass(frozen=True)
class BootstrapResult:
    user_created: bool
    project: Project
    issued: IssuedApiKey


@transaction.atomic
def bootstrap(*, email: str, password: str | None, project_slug: str, key_name: str = "bootstrap") -> BootstrapResult:
    """Make sure a login, an organization, a project and an admin membership exist, and issue
    a new API key. Safe to repeat: nothing is duplicated except that each run issues a key."""
    user, user_created = user_get_or_create(email=email, password=password)
    project = Project.objects.select_related("organization").filter(slug=project_slug).first()
    if project is None:
        organization = organization_get_or_create(name=project_slug, slug=project_slug)
        project = project_create(organization=organization, name=project_slug, slug=project_slug)
    membership = Membership.objects.filter(organization=project.organization, user=user).first()
    if membership is None:
        membership_set(organization=project.organization, user=user, role=Role.ADMIN)
    issued = api_key_create(project=project, name=key_name, created_by=user)
    return BootstrapResult(user_created=user_created, project=project, issued=issued)


# --- Settings pages: audited changes to projects and members ------------------------------


class LastAdminError(ValueError):
    """The change would leave an organization without an admin, and nobody could manage it."""


@dataclass(frozen=True)
class MemberAdded:
    membership: Membership
    # The new login's first password, when the email had no login yet; shown once, never stored.
    password: str | None


@transaction.atomic
def project_add(*, organization: Organization, actor, name: str, slug: str | None = None) -> Project:
    project = project_create(organization=organization, name=name, slug=slug)
    audit_record(actor=actor, organization=organization, project=project, action="project.create",
                 target=project.slug)
    return project


PROJECT_SETTINGS = ("name", "time_zone", "redaction_mode", "retention_days")


@transaction.atomic
def project_settings_update(*, project: Project, actor, **values) -> dict[str, tuple]:
    """Change any of PROJECT_SETTINGS; returns {field: (old, new)} for those that changed.
    A new redaction mode applies to calls ingested from now on; stored content is as it was."""
    unknown = set(values) - set(PROJECT_SETTINGS)
    if unknown:
        raise TypeError(f"not a project setting: {', '.join(sorted(unknown))}")
    changes = {name: (getattr(project, name), value) for name, value in values.items()
               if getattr(project, name) != value}
    if not changes:
        return {}
    for name, (_, value) in changes.items():
        setattr(project, name, value)
    project.full_clean()
    project.save(update_fields=list(changes))
    audit_record(actor=actor, organization=project.organization, project=project, action="project.update",
                 target=project.slug, details={name: [old, new] for name, (old, new) in changes.items()})
    return changes


def _locked(membership: Membership) -> Membership:
    """The membership, with its organization's row locked: two admins demoting or removing
    each other at once must not both succeed, or the organization would have no admin left."""
    Organization.objects.select_for_update().filter(pk=membership.organization_id).first()
    return Membership.objects.select_related("user", "organization").get(pk=membership.pk)


def _other_admins(membership: Membership) -> bool:
    return Membership.objects.filter(organization_id=membership.organization_id, role=Role.ADMIN).exclude(
        pk=membership.pk).exists()


@transaction.atomic
def member_add(*, organization: Organization, actor, email: str, role: Role | str) -> MemberAdded:
    """Give the login with `email` a role in `organization`, creating the login (with a random
    first password, returned once) when there is none."""
    User = get_user_model()
    email = User.objects.normalize_email(email).lower()
    password = None
    if not User.objects.filter(email=email).exists():
        password = secrets.token_urlsafe(12)
    user, _ = user_get_or_create(email=email, password=password)
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise ValueError(f"{email} is already a member; change their role instead.")
    membership = membership_set(organization=organization, user=user, role=role)
    audit_record(actor=actor, organization=organization, action="member.add", target=email,
                 details={"role": str(Role(role)), "login_created": password is not None})
    return MemberAdded(membership=membership, password=password)


@transaction.atomic
def member_role_change(*, membership: Membership, actor, role: Role | str) -> Membership:
    role = Role(role)
    membership = _locked(membership)
    old = membership.role
    if old == role:
        return membership
    if old == Role.ADMIN and not _other_admins(membership):
        raise LastAdminError("An organization needs at least one admin: make someone else admin first.")
    membership = membership_set(organization=membership.organization, user=membership.user, role=role)
    audit_record(actor=actor, organization=membership.organization, action="member.role_change",
                 target=membership.user.email, details={"role": [old, str(role)]})
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor) -> None:
    membership = _locked(membership)
    if membership.role == Role.ADMIN and not _other_admins(membership):
        raise LastAdminError("An organization needs at least one admin: make someone else admin first.")
    membership.delete()
    audit_record(actor=actor, organization=membership.organization, action="member.remove",
                 target=membership.user.email, details={"role": membership.role})
