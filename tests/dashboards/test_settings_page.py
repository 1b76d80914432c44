"""The settings page: each change needs its capability and a CSRF token, goes through an
audited service, and secrets are shown once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from observatory.audit.models import AuditEvent
from observatory.pricing.models import PriceOverride
from observatory.tenancy.models import ApiKey, Membership, RedactionMode
from observatory.tenancy.roles import Role
from observatory.tenancy.services import api_key_authenticate, api_key_create
from tests.dashboards.conftest import logged_in


def post(client, project, **data):
    return client.post(f"/p/{project.slug}/settings/", data)


def test_creating_a_key_shows_its_secret_once_uncached_and_it_works(project, teammate):
    response = post(logged_in(teammate), project, action="key.create", name="backend")
    assert response.status_code == 200
    secret = response.context["new_key"].secret
    assert secret in response.content.decode() and "no-store" in response["Cache-Control"]
    assert api_key_authenticate(secret=secret).project == project
    again = logged_in(teammate).get(f"/p/{project.slug}/settings/").content.decode()
    assert secret not in again and secret[:11] in again  # only the hint remains
    event = AuditEvent.objects.get(action="api_key.create")
    assert event.actor == teammate and secret not in str(event.details) + event.target


def test_revoking_a_key_stops_it_at_once(project, teammate, api_key):
    response = post(logged_in(teammate), project, action="key.revoke", id=api_key.key.pk)
    assert response.status_code == 302 and response["Location"].endswith("#keys")
    assert api_key_authenticate(secret=api_key.secret) is None
    assert AuditEvent.objects.filter(action="api_key.revoke", actor=teammate).count() == 1


def test_a_key_of_another_project_cannot_be_revoked_from_this_one(project, owner, outsider):
    theirs = ApiKey.objects.get(project=outsider.project)
    assert post(logged_in(owner), project, action="key.revoke", id=theirs.pk).status_code == 404
    assert ApiKey.objects.get(pk=theirs.pk).is_active


@pytest.mark.parametrize("persona, action, data", [
    ("finance", "key.create", {"name": "x"}),
    ("viewer", "key.create", {"name": "x"}),
    ("teammate", "project.update", {"name": "x", "time_zone": "UTC", "redaction_mode": "drop"}),
    ("teammate", "member.add", {"email": "new@acme.test", "role": "viewer"}),
    ("finance", "price.create", {"model_pattern": "x", "input_per_mtok": "1", "output_per_mtok": "1"}),
    ("viewer", "project.create", {"name": "x", "slug": "x"}),
])
def test_each_change_needs_its_capability(request, project, persona, action, data):
    response = post(logged_in(request.getfixturevalue(persona)), project, action=action, **data)
    assert response.status_code == 403
    assert not AuditEvent.objects.exists()


def test_outsiders_get_404_even_for_changes(project, outsider):
    assert post(logged_in(outsider.user), project, action="key.create", name="x").status_code == 404


def test_changes_need_a_csrf_token(project, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert post(client, project, action="key.create", name="x").status_code == 403
    assert not ApiKey.objects.filter(name="x").exists()


def test_project_settings_change_redaction_and_retention_with_an_audit_trail(project, owner):
    response = post(logged_in(owner), project, action="project.update", name="Support bot", time_zone="Europe/Paris",
                    redaction_mode="drop", retention_days="14")
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.time_zone, project.redaction_mode, project.retention_days) == ("Europe/Paris",
                                                                                   RedactionMode.DROP, 14)
    event = AuditEvent.objects.get(action="project.update")
    assert event.details == {"time_zone": ["UTC", "Europe/Paris"], "redaction_mode": ["mask", "drop"],
                             "retention_days": [None, 14]}


def test_invalid_settings_are_shown_back_with_the_reason(project, owner):
    response = post(logged_in(owner), project, action="project.update", name="", time_zone="Mars/Olympus",
                    redaction_mode="mask")
    assert response.status_code == 400
    assert set(response.context["project_form"].errors) == {"name", "time_zone"}


def test_members_are_added_with_a_first_password_shown_once_and_roles_change(project, owner, client):
    response = post(logged_in(owner), project, action="member.add", email="New@Acme.test", role="finance")
    password = response.context["new_login"]["password"]
    assert password in response.content.decode() and "no-store" in response["Cache-Control"]
    assert client.post("/login/", {"username": "new@acme.test", "password": password}).status_code == 302
    membership = Membership.objects.get(user__email="new@acme.test")
    assert membership.role == Role.FINANCE
    post(logged_in(owner), project, action="member.role", id=membership.pk, role="viewer")
    assert Membership.objects.get(pk=membership.pk).role == Role.VIEWER
    post(logged_in(owner), project, action="member.remove", id=membership.pk)
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "member.add", "member.role_change", "member.remove"]


def test_adding_an_existing_login_sets_no_password(project, owner, outsider):
    response = post(logged_in(owner), project, action="member.add", email=outsider.user.email, role="viewer")
    assert response.status_code == 302
    assert Membership.objects.filter(user=outsider.user, organization=project.organization).exists()


def test_the_last_admin_can_be_neither_demoted_nor_removed(project, owner, teammate):
    membership = Membership.objects.get(user=owner)
    client = logged_in(owner)
    post(client, project, action="member.role", id=membership.pk, role="viewer")
    post(client, project, action="member.remove", id=membership.pk)
    assert Membership.objects.get(pk=membership.pk).role == Role.ADMIN
    assert "at least one admin" in client.get(f"/p/{project.slug}/settings/").content.decode()


def test_price_overrides_are_added_and_removed(project, teammate):
    client = logged_in(teammate)
    response = post(client, project, action="price.create", model_pattern="my-finetune.*", provider="",
                    input_per_mtok="0.5", output_per_mtok="1.5")
    assert response.status_code == 302
    override = PriceOverride.objects.get(project=project)
    assert (override.input_per_mtok, override.output_per_mtok) == (Decimal("0.5"), Decimal("1.5"))
    assert post(client, project, action="price.create", model_pattern="(unclosed", input_per_mtok="1",
                output_per_mtok="1").status_code == 400
    post(client, project, action="price.delete", id=override.pk)
    assert not PriceOverride.objects.exists()
    assert list(AuditEvent.objects.values_list("action", flat=True).order_by("id")) == [
        "price_override.create", "price_override.delete"]


def test_a_new_project_is_created_in_the_same_organization(project, owner):
    response = post(logged_in(owner), project, action="project.create", name="Search", slug="search")
    assert response.status_code == 302 and response["Location"].startswith("/p/search/settings/")
    assert logged_in(owner).get("/p/search/").status_code == 200
    taken = post(logged_in(owner), project, action="project.create", name="Again", slug="search")
    assert taken.status_code == 400 and "slug" in taken.context["project_create_form"].errors


def test_roles_without_key_management_do_not_see_keys(project, finance):
    api_key_create(project=project, name="hidden-key")
    body = logged_in(finance).get(f"/p/{project.slug}/settings/").content.decode()
    assert "hidden-key" not in body and 'name="action" value="key.create"' not in body


def test_an_unknown_action_is_a_400(project, owner):
    assert post(logged_in(owner), project, action="drop.tables").status_code == 400
