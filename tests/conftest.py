"""Shared fixtures: a project and the personas every permission test speaks of.

owner (admin), teammate (engineer), finance, viewer, and an outsider who is admin of another
organization with a project and an API key of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from observatory.tenancy.roles import Role
from observatory.tenancy.services import (
    api_key_create,
    membership_set,
    organization_get_or_create,
    project_create,
    user_get_or_create,
)

PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture(autouse=True)
def _empty_call_store_after_transactional_tests(request, django_db_blocker):
    """Django's flush after a transactional test skips unmanaged models, so the partitioned
    call tables are emptied here."""
    yield
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    if not (transactional or "live_server" in request.fixturenames or "transactional_db" in request.fixturenames):
        return
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE calls_call, calls_callcontent")


_PAGE_TESTS = ("dashboards", "browser")


@pytest.fixture(scope="session", autouse=True)
def _static_files_collected(request, tmp_path_factory, django_db_blocker):
    """Tests run with production settings, where pages name static files by their hashed
    names from whitenoise's manifest: collect them once per run into a temporary STATIC_ROOT,
    as the image does at build time. Only runs that render pages pay for it, and it happens
    before any test, so a live server's whitenoise finds the files whichever test starts it."""
    tests = Path(__file__).parent
    if not any(Path(str(item.path)).is_relative_to(tests / name) for item in request.session.items
               for name in _PAGE_TESTS):
        yield None
        return
    from django.core.management import call_command
    from django.test import override_settings

    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root


def make_user(email: str):
    user, _ = user_get_or_create(email=email, password=PASSWORD)
    return user


@pytest.fixture
def organization(db):
    return organization_get_or_create(name="Acme", slug="acme")


@pytest.fixture
def project(organization):
    return project_create(organization=organization, name="Support bot", slug="support-bot")


def member(organization, email: str, role: Role):
    user = make_user(email)
    membership_set(organization=organization, user=user, role=role)
    return user


@pytest.fixture
def owner(organization):
    return member(organization, "owner@acme.test", Role.ADMIN)


@pytest.fixture
def teammate(organization):
    return member(organization, "engineer@acme.test", Role.ENGINEER)


@pytest.fixture
def finance(organization):
    return member(organization, "finance@acme.test", Role.FINANCE)


@pytest.fixture
def viewer(organization):
    return member(organization, "viewer@acme.test", Role.VIEWER)


@dataclass
class Outsider:
    user: object
    project: object
    secret: str


@pytest.fixture
def outsider(db):
    other = organization_get_or_create(name="Globex", slug="globex")
    user = member(other, "admin@globex.test", Role.ADMIN)
    other_project = project_create(organization=other, name="Globex app", slug="globex-app")
    issued = api_key_create(project=other_project, name="globex")
    return Outsider(user=user, project=other_project, secret=issued.secret)


@pytest.fixture
def api_key(project):
    return api_key_create(project=project, name="test key")
