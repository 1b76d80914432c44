"""The Budgets page: every budget with its burn, and budgets created, edited and deleted from
the browser by the roles the API lets manage them, with the API's validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from observatory.audit.models import AuditEvent
from observatory.budgets.models import Budget
from observatory.budgets.selectors import budget_burn
from observatory.budgets.services import budget_create, budget_evaluate
from tests.alerting import spend
from tests.dashboards.conftest import IMG, PAYLOADS, SCRIPT, logged_in

HOOK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


@pytest.fixture
def used(project):
    """Spend that makes the model, user and tag of the tests known to the project."""
    spend(project, "2.50", datetime.now(UTC) - timedelta(minutes=3), model="gpt-4o", user_id="u-1", tags=["batch"])
    return project


def url(project) -> str:
    return f"/p/{project.slug}/budgets/"


def form(**fields) -> dict:
    return {"action": "create", "name": "OpenAI monthly", "period": "month", "amount": "100.00", "scope": "project",
            "scope_value": "", "thresholds": "50,80,100", "recipients": "", "notify_forecast": "on",
            "enabled": "on", **fields}


@pytest.mark.parametrize("persona", ["owner", "teammate", "finance"])
def test_members_who_manage_budgets_create_one_and_see_its_burn(request, used, persona):
    user = request.getfixturevalue(persona)
    client = logged_in(user)
    response = client.post(url(used), form(scope="model", scope_value="gpt-4o", thresholds="80, 50,100",
                                           recipients=f"owner@acme.test, {HOOK}", hard_cap="on"))
    assert response.status_code == 302 and response["Location"] == url(used)
    budget = Budget.objects.get(project=used)
    assert (budget.name, budget.scope, budget.scope_value, budget.amount, budget.thresholds, budget.hard_cap) == (
        "OpenAI monthly", "model", "gpt-4o", Decimal("100.00"), [50, 80, 100], True)
    assert budget.recipients == ["owner@acme.test", HOOK] and budget.created_by == user
    event = AuditEvent.objects.get(action="budget.create")
    assert (event.actor, event.project, event.target) == (user, used, "OpenAI monthly")
    # The log keeps no secrets: a webhook's path is the password of its channel.
    assert event.details["amount"] == "100.00" and HOOK not in str(event.details)
    page = client.get(url(used))
    [standing] = page.context["standings"]
    # The same reading as the API's burn and the guard's recorded spend.
    assert standing.burn.spent == budget_burn(budget=budget).spent == Decimal("2.50") == budget.spent
    body = page.content.decode()
    assert "Created the budget" in body and "$2.50" in body and "2.5%" in body and "model gpt-4o" in body
    assert page.context["create_form"] is not None


def test_an_empty_project_explains_budgets_and_opens_the_form(project, owner, viewer):
    body = logged_in(owner).get(url(project)).content.decode()
    assert "No budgets yet" in body and "<details open>" in body and 'name="amount"' in body
    assert "needs a call with it first" in body  # no call yet: only whole-project budgets work
    assert "Admins, engineers and finance create budgets" in logged_in(viewer).get(url(project)).content.decode()


def test_a_budget_is_edited_from_its_form(used, finance):
    budget = budget_create(project=used, name="Monthly", amount=Decimal(10), thresholds=[50])
    client = logged_in(finance)
    shown = client.get(url(used), {"edit": budget.pk})
    assert shown.context["edit_form"].instance == budget and 'value="Monthly"' in shown.content.decode()
    response = client.post(url(used), form(action="update", id=budget.pk, name="Monthly (raised)", amount="20",
                                           thresholds="50,90", period="week"))
    assert response.status_code == 302
    budget.refresh_from_db()
    assert (budget.name, budget.amount, budget.thresholds, budget.period) == (
        "Monthly (raised)", Decimal("20.00"), [50, 90], "week")
    event = AuditEvent.objects.get(action="budget.update")
    assert event.actor == finance and event.target == "Monthly (raised)"
    assert set(event.details) == {"name", "amount", "thresholds", "period"}
    assert event.details["thresholds"] == ["[50]", "[50, 90]"]


def test_changing_the_scope_to_a_value_no_call_has_is_refused(used, owner):
    budget = budget_create(project=used, name="Monthly", amount=Decimal(10))
    response = logged_in(owner).post(url(used), form(action="update", id=budget.pk, scope="model",
                                                     scope_value="gpt-40"))
    assert response.status_code == 400
    assert "No call of this project has model" in " ".join(response.context["edit_form"].errors["scope_value"])
    budget.refresh_from_db()
    assert (budget.scope, budget.scope_value) == ("project", "")


def test_a_budget_is_deleted(used, teammate):
    budget = budget_create(project=used, name="Monthly", amount=Decimal(10))
    response = logged_in(teammate).post(url(used), {"action": "delete", "id": budget.pk})
    assert response.status_code == 302 and not Budget.objects.filter(pk=budget.pk).exists()
    event = AuditEvent.objects.get(action="budget.delete")
    assert (event.actor, event.target) == (teammate, "Monthly")


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"amount": "0"}, "amount", "greater than or equal to 0.01"),
        ({"amount": "-5"}, "amount", "greater than or equal to 0.01"),
        ({"amount": "ten"}, "amount", "Enter a number"),
        ({"amount": "1.234"}, "amount", "2 decimal places"),
        ({"thresholds": "0,50"}, "thresholds", "0% is outside 1..1000%"),
        ({"thresholds": "1001"}, "thresholds", "1001% is outside 1..1000%"),
        ({"thresholds": ""}, "thresholds", "required"),
        ({"thresholds": "half"}, "thresholds", "whole number"),
        ({"recipients": "finance at acme"}, "recipients", "neither an email address nor"),
        ({"recipients": "ftp://files.acme.test/x"}, "recipients", "neither an email address nor"),
        ({"recipients": "https://"}, "recipients", "not a valid http(s) webhook URL"),
        ({"recipients": "a@acme.test,,b@acme.test"}, "recipients", "required"),
        ({"scope": "model", "scope_value": "gpt-40"}, "scope_value", "No call of this project has model 'gpt-40'"),
        ({"scope": "tag", "scope_value": "nightly"}, "scope_value", "No call of this project has tag"),
        ({"scope": "user", "scope_value": ""}, "scope_value", "Name the user"),
        ({"scope_value": "gpt-4o"}, "scope_value", "Leave scope_value empty"),
        ({"scope": "planet", "scope_value": "mars"}, "scope", "not one of the available choices"),
        ({"period": "year"}, "period", "not one of the available choices"),
        ({"name": ""}, "name", "required"),
    ],
)
def test_bad_input_comes_back_naming_the_field_and_stores_nothing(used, owner, fields, field, fragment):
    response = logged_in(owner).post(url(used), form(**fields))
    assert response.status_code == 400
    errors = response.context["create_form"].errors
    # An unknown scope leaves the stored one, which then says scope_value should be empty.
    assert list(errors) == [field] or field == "scope", errors
    assert fragment in " ".join(errors[field])
    body = response.content.decode()
    assert "<details open>" in body and 'class="field invalid"' in body
    assert not Budget.objects.filter(project=used).exists()
    assert not AuditEvent.objects.filter(action__startswith="budget.").exists()


def test_viewers_read_budgets_without_forms_and_their_posts_are_refused(used, viewer):
    budget = budget_create(project=used, name="Monthly", amount=Decimal(10), recipients=["owner@acme.test", HOOK])
    client = logged_in(viewer)
    page = client.get(url(used), {"edit": budget.pk})
    body = page.content.decode()
    assert page.status_code == 200 and page.context["create_form"] is None and page.context["edit_form"] is None
    assert 'name="action"' not in body and "Monthly" in body
    # A webhook's path is its password: shown to those who manage budgets only.
    assert HOOK not in body and "hooks.slack.com/…CRET" in body
    for data in (form(), {"action": "delete", "id": budget.pk}, form(action="update", id=budget.pk, name="Mine"),
                 {"action": "nonsense"}):
        assert client.post(url(used), data).status_code == 403
    assert list(Budget.objects.filter(project=used).values_list("name", flat=True)) == ["Monthly"]
    assert not AuditEvent.objects.filter(action__in=["budget.update", "budget.delete"]).exists()


def test_changes_need_a_csrf_token(used, owner):
    budget = budget_create(project=used, name="Monthly", amount=Decimal(10))
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(url(used), form()).status_code == 403
    assert client.post(url(used), {"action": "delete", "id": budget.pk}).status_code == 403
    assert list(Budget.objects.filter(project=used)) == [budget]
    token = client.get(url(used)).cookies["csrftoken"].value
    assert client.post(url(used), {**form(), "csrfmiddlewaretoken": token}).status_code == 302


def test_outsiders_get_404_and_another_projects_budget_is_404(used, owner, outsider):
    mine = budget_create(project=used, name="Monthly", amount=Decimal(10))
    theirs = budget_create(project=outsider.project, name="Globex", amount=Decimal(10))
    stranger = logged_in(outsider.user)
    assert stranger.get(url(used)).status_code == 404
    assert stranger.post(url(used), {"action": "delete", "id": mine.pk}).status_code == 404
    client = logged_in(owner)
    assert client.post(url(used), {"action": "delete", "id": theirs.pk}).status_code == 404
    assert client.get(url(used), {"edit": theirs.pk}).status_code == 404
    for nonsense in ("abc", "", "9" * 30):
        assert client.post(url(used), {"action": "delete", "id": nonsense}).status_code == 404
    assert Budget.objects.filter(pk__in=[mine.pk, theirs.pk]).count() == 2


def test_the_list_exports_to_csv_with_exact_figures(used, finance):
    budget_create(project=used, name="Monthly", amount=Decimal(10))
    response = logged_in(finance).get(url(used), {"export": "budgets"})
    assert response["Content-Type"].startswith("text/csv")
    assert "Monthly,the whole project,month,10.00,2.5" in response.content.decode()


def test_a_spent_budget_reads_as_spent(used, owner):
    budget_create(project=used, name="Tiny", amount=Decimal("1.00"), hard_cap=True)
    [standing] = logged_in(owner).get(url(used)).context["standings"]
    assert (standing.state, standing.tone, standing.burn.exhausted) == ("capped", "error", True)


def test_payloads_in_budget_names_and_scopes_render_inert(pages_project, owner):
    for index, payload in enumerate(PAYLOADS):
        budget_create(project=pages_project, name=payload, amount=Decimal(index + 1), scope="model",
                      scope_value=payload)
    client = logged_in(owner)
    [first, _] = Budget.objects.filter(project=pages_project).order_by("pk")
    for page in (client.get(url(pages_project)), client.get(url(pages_project), {"edit": first.pk})):
        body = page.content.decode()
        assert SCRIPT not in body and IMG not in body
        assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in body


def test_budget_emails_link_to_this_page(used, owner, settings):
    budget = budget_create(project=used, name="Tiny", amount=Decimal("1.00"), thresholds=[100],
                           recipients=["owner@acme.test"], notify_forecast=False)
    [notification] = budget_evaluate(budget=budget).notifications
    link = notification.context["link"]
    assert link == f"{settings.SITE_URL}{url(used)}"
    assert logged_in(owner).get(link.removeprefix(settings.SITE_URL)).status_code == 200
