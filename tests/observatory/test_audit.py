"""The audit log at the service level: what the settings page tests do not reach."""

from unittest import mock

import pytest

from observatory.audit.models import AuditEvent
from observatory.tenancy.models import ApiKey, Membership
from observatory.tenancy.roles import Role
from observatory.tenancy.services import api_key_create, api_key_revoke, member_add, member_role_change


def test_revoking_twice_records_one_event_naming_the_key_not_its_secret(project, owner):
    issued = api_key_create(project=project, name="ci", created_by=owner)
    assert api_key_revoke(key=issued.key, actor=owner) is True
    assert api_key_revoke(key=issued.key, actor=owner) is False  # nothing happened, nothing logged
    events = AuditEvent.objects.filter(organization=project.organization).order_by("id")
    assert [(e.action, e.actor_email, e.project) for e in events] == [
        ("api_key.create", owner.email, project), ("api_key.revoke", owner.email, project)]
    assert issued.key.public_id in events[1].target
    assert issued.secret not in str(list(events.values()))


def test_a_change_role_to_the_same_role_is_not_an_event(organization, owner):
    added = member_add(organization=organization, actor=owner, email="new@acme.test", role=Role.VIEWER)
    member_role_change(membership=added.membership, actor=owner, role=Role.VIEWER)
    member_role_change(membership=added.membership, actor=owner, role=Role.FINANCE)
    events = AuditEvent.objects.filter(organization=organization).order_by("id")
    assert [e.action for e in events] == ["member.add", "member.role_change"]
    assert events[1].details == {"role": ["viewer", "finance"]}


def test_a_change_whose_record_cannot_be_written_does_not_happen(project, owner):
    """The record and the change share a transaction: no unlogged change of access."""
    with mock.patch.object(AuditEvent.objects, "create", side_effect=RuntimeError("audit table unavailable")):
        with pytest.raises(RuntimeError):
            member_add(organization=project.organization, actor=owner, email="sneaky@acme.test", role=Role.ADMIN)
        with pytest.raises(RuntimeError):
            api_key_create(project=project, name="unlogged", created_by=owner)
    assert not Membership.objects.filter(user__email="sneaky@acme.test").exists()
    assert not ApiKey.objects.filter(name="unlogged").exists()
