import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from observatory.tenancy.models import ApiKey, Membership, Organization, Project
from observatory.tenancy.roles import Role
from observatory.tenancy.services import api_key_authenticate


def bootstrap(*args: str) -> dict:
    out = StringIO()
    call_command("bootstrap", *args, stdout=out)
    return json.loads(out.getvalue())


def test_bootstrap_creates_everything_and_prints_a_working_key(db):
    result = bootstrap("--email", "Ops@Example.com", "--password", "a-long-password-1", "--project", "shop")
    project = Project.objects.get(slug="shop")
    assert result["project_id"] == project.pk and result["user_created"] is True
    assert result["url"].endswith("/p/shop/")
    key = api_key_authenticate(secret=result["secret_key"])
    assert key.project == project and key.public_id == result["public_key"]
    user = get_user_model().objects.get(email="ops@example.com")
    assert user.check_password("a-long-password-1")
    assert Membership.objects.get(user=user).role == Role.ADMIN


def test_bootstrap_twice_duplicates_nothing_and_keeps_the_password(db):
    first = bootstrap("--email", "ops@example.com", "--password", "a-long-password-1", "--project", "shop")
    second = bootstrap("--email", "ops@example.com", "--password", "another-password-2", "--project", "shop")
    assert second["project_id"] == first["project_id"] and second["user_created"] is False
    assert get_user_model().objects.count() == 1
    assert Organization.objects.count() == Project.objects.count() == Membership.objects.count() == 1
    assert get_user_model().objects.get().check_password("a-long-password-1")
    # Each run issues a key, and both keep working.
    assert ApiKey.objects.count() == 2
    assert api_key_authenticate(secret=first["secret_key"]) is not None


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "", "two@@example.com"])
def test_bootstrap_with_an_invalid_email_stops_with_one_sentence(db, email):
    with pytest.raises(CommandError, match="is not a valid email address"):
        bootstrap("--email", email, "--password", "a-long-password-1", "--project", "shop")
    assert not Project.objects.exists()


def test_bootstrap_with_an_invalid_slug_is_refused(db):
    with pytest.raises(CommandError, match="not a valid project slug"):
        bootstrap("--email", "ops@example.com", "--password", "a-long-password-1", "--project", "my shop!")


def test_bootstrap_of_a_new_user_needs_a_password(db):
    with pytest.raises(CommandError, match="give --password"):
        bootstrap("--email", "ops@example.com", "--project", "shop")
