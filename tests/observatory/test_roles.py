import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import Http404

from observatory.tenancy.models import Membership
from observatory.tenancy.roles import API_KEY_ROLE, ROLE_CAPABILITIES, Capability, Role, role_can
from observatory.tenancy.selectors import project_access_get, projects_for_user
from observatory.tenancy.services import membership_set


def test_only_admin_manages_members_and_project_settings():
    for role in Role:
        assert role_can(role, Capability.MANAGE_MEMBERS) == (role == Role.ADMIN)
        assert role_can(role, Capability.MANAGE_PROJECT) == (role == Role.ADMIN)


@pytest.mark.parametrize("role", [Role.FINANCE, Role.VIEWER])
def test_finance_and_viewer_never_see_content_or_manage_keys(role):
    assert not role_can(role, Capability.VIEW_CONTENT)
    assert not role_can(role, Capability.MANAGE_KEYS)


def test_every_role_sees_costs_and_traces_and_unknown_roles_see_nothing():
    for role in Role:
        assert role_can(role, Capability.VIEW_COSTS)
        assert role_can(role, Capability.VIEW_TRACES)
    assert not role_can("intern", Capability.VIEW_TRACES)
    assert not role_can(None, Capability.VIEW_TRACES)
    assert set(ROLE_CAPABILITIES) == set(Role) | {API_KEY_ROLE}
    assert not role_can(API_KEY_ROLE, Capability.MANAGE_KEYS)


def test_member_gets_the_project_with_their_role(project, teammate):
    access = project_access_get(user=teammate, slug=project.slug)
    assert access.project == project and access.role == Role.ENGINEER
    assert access.can(Capability.VIEW_CONTENT)


def test_outsider_gets_404_not_403(project, outsider):
    with pytest.raises(Http404):
        project_access_get(user=outsider.user, slug=project.slug)
    with pytest.raises(Http404):
        project_access_get(user=outsider.user, slug="no-such-project")


def test_member_without_the_capability_gets_403(project, finance):
    with pytest.raises(PermissionDenied):
        project_access_get(user=finance, slug=project.slug, capability=Capability.VIEW_CONTENT)


def test_projects_for_user_lists_only_their_organizations(project, owner, outsider):
    assert list(projects_for_user(user=owner)) == [project]
    assert list(projects_for_user(user=outsider.user)) == [outsider.project]


def test_membership_set_changes_the_role_without_duplicating(organization, owner):
    membership_set(organization=organization, user=owner, role=Role.VIEWER)
    assert Membership.objects.filter(user=owner).count() == 1
    assert Membership.objects.get(user=owner).role == Role.VIEWER


def test_database_refuses_an_unknown_role(organization, owner):
    with pytest.raises(IntegrityError):
        Membership.objects.filter(user=owner).update(role="superhero")
