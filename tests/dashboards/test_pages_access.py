"""Who may open which page: login, membership (404 for outsiders), role (403), exports."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import make_user
from tests.dashboards.conftest import logged_in

PAGES = ["", "traces/", "trace/trace-ok", "latency/", "cost/", "quality/", "finance/", "settings/", "reliability/",
         "budgets/", "alerts/"]
PERSONAS = ["owner", "teammate", "finance", "viewer"]


def url(project, page: str) -> str:
    return f"/p/{project.slug}/{page}"


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_visitors_are_sent_to_log_in(pages_project, page):
    response = Client().get(url(pages_project, page))
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_every_member_opens_every_page(request, pages_project, page, persona):
    response = logged_in(request.getfixturevalue(persona)).get(url(pages_project, page))
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("page", PAGES)
def test_someone_from_another_organization_gets_404_not_403(pages_project, outsider, page):
    assert logged_in(outsider.user).get(url(pages_project, page)).status_code == 404


def test_an_unknown_project_and_an_unknown_trace_are_404(pages_project, owner):
    client = logged_in(owner)
    assert client.get("/p/no-such-project/").status_code == 404
    assert client.get(url(pages_project, "trace/no-such-trace")).status_code == 404


def test_the_switcher_lists_only_the_users_projects(pages_project, owner, outsider):
    body = logged_in(owner).get(url(pages_project, "")).content.decode()
    assert f"/p/{pages_project.slug}/" in body and f"/p/{outsider.project.slug}/" not in body


def test_home_opens_the_first_project_or_explains_how_to_get_one(pages_project, owner):
    assert logged_in(owner).get("/")["Location"] == f"/p/{pages_project.slug}/"
    loner = logged_in(make_user("loner@example.test"))
    assert b"not in any project" in loner.get("/").content


def test_login_with_email_and_password_lands_on_the_page_asked_for(pages_project, owner):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/?next=/p/support-bot/cost/")
    token = page.cookies["csrftoken"].value
    response = client.post("/login/", {"username": owner.email, "password": "correct-horse-battery-staple-42",
                                       "next": "/p/support-bot/cost/", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == "/p/support-bot/cost/"
    stranger = Client(enforce_csrf_checks=True)
    token = stranger.get("/login/").cookies["csrftoken"].value
    wrong = stranger.post("/login/", {"username": owner.email, "password": "wrong", "csrfmiddlewaretoken": token})
    assert wrong.status_code == 200 and b"didn't match" in wrong.content
    assert stranger.post("/login/", {"username": owner.email, "password": "correct-horse-battery-staple-42"}
                         ).status_code == 403  # no CSRF token


@pytest.mark.parametrize("persona, allowed", [("owner", True), ("teammate", True), ("finance", True),
                                              ("viewer", False)])
def test_csv_export_follows_the_export_capability(request, pages_project, persona, allowed):
    response = logged_in(request.getfixturevalue(persona)).get(url(pages_project, "finance/"),
                                                               {"export": "daily-by-model"})
    assert response.status_code == (200 if allowed else 403)
    if allowed:
        assert response["Content-Type"].startswith("text/csv")


def test_exporting_a_table_the_page_does_not_have_is_404(pages_project, owner):
    assert logged_in(owner).get(url(pages_project, "cost/"), {"export": "nope"}).status_code == 404


def test_logout_needs_a_post(pages_project, owner):
    client = logged_in(owner)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 302
    assert client.get(url(pages_project, ""))["Location"].startswith("/login/")
