"""/api/v1/budgets and /api/v1/spend-digest: who may read and write, what they answer, and
clear 400s naming the field for every kind of bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from observatory.audit.models import AuditEvent
from observatory.budgets.models import Budget, DigestSubscription
from observatory.budgets.services import budget_create
from tests.alerting import spend
from tests.dashboards.test_metrics_api import bearer, logged_in

pytestmark = pytest.mark.django_db
URL = "/api/v1/budgets"
HOOK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


@pytest.fixture
def used(project):
    """Calls that make the model, user and tag of the tests known to the project."""
    spend(project, "2.50", datetime.now(UTC) - timedelta(minutes=3), model="gpt-4o", user_id="u-1", tags=["batch"])
    return project


def body(**fields) -> dict:
    return {"name": "OpenAI monthly", "amount": "100.00", **fields}


def post(client: APIClient, project, data: dict):
    return client.post(f"{URL}?project={project.slug}", data, format="json")


@pytest.mark.parametrize("persona", ["owner", "teammate", "finance"])
def test_members_who_manage_budgets_create_them_with_their_burn(request, used, persona):
    client = logged_in(request.getfixturevalue(persona))
    response = post(client, used, body(scope="model", scope_value="gpt-4o", recipients=["owner@acme.test", HOOK],
                                       hard_cap=True))
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["thresholds"] == [50, 80, 100] and data["period"] == "month" and data["amount"] == "100.00"
    assert data["recipients"] == ["owner@acme.test", HOOK]
    burn = data["burn"]
    assert Decimal(burn["spent"]) == Decimal("2.50") and Decimal(burn["share"]) == Decimal("0.025")
    assert burn["thresholds_crossed"] == [] and burn["exhausted"] is False
    budget = Budget.objects.get(pk=data["id"])
    assert budget.created_by.email.split("@")[0] in ("owner", "engineer", "finance")
    assert budget.spent == Decimal("2.50")  # recorded at once, for the guard


def test_viewers_and_api_keys_read_budgets_but_never_write_them(used, viewer, api_key):
    budget_create(project=used, name="Monthly", amount=Decimal(10), recipients=["owner@acme.test", HOOK])
    for client in (logged_in(viewer), bearer(api_key.secret)):
        listed = client.get(f"{URL}?project={used.slug}")
        assert listed.status_code == 200
        [item] = listed.json()
        # Whoever cannot manage budgets sees that a webhook exists, not its secret path.
        assert item["recipients"] == ["owner@acme.test", "https://hooks.slack.com/…CRET"]
        assert post(client, used, body()).status_code == 403
        detail = f"{URL}/{item['id']}?project={used.slug}"
        assert client.patch(detail, {"amount": "5"}, format="json").status_code == 403
        assert client.delete(detail).status_code == 403


def test_outsiders_get_404_for_another_projects_budgets(used, outsider):
    budget = budget_create(project=used, name="Monthly", amount=Decimal(10))
    assert logged_in(outsider.user).get(f"{URL}?project={used.slug}").status_code == 404
    assert post(logged_in(outsider.user), used, body()).status_code == 404
    assert bearer(outsider.secret).get(f"{URL}/{budget.pk}").status_code == 404
    assert APIClient().get(f"{URL}?project={used.slug}").status_code in (401, 403)


def test_a_budget_is_updated_and_deleted(used, owner):
    client = logged_in(owner)
    created = post(client, used, body()).json()
    detail = f"{URL}/{created['id']}?project={used.slug}"
    changed = client.patch(detail, {"amount": "2.00", "thresholds": [100, 90, 90]}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["thresholds"] == [90, 100]
    assert changed.json()["burn"]["thresholds_crossed"] == [90, 100]  # $2.50 of $2.00
    assert client.delete(detail).status_code == 204
    assert client.get(detail).status_code == 404
    # Audited like the same changes made on the Budgets page.
    events = AuditEvent.objects.filter(action__startswith="budget.").order_by("id")
    assert [(event.action, event.actor) for event in events] == [
        ("budget.create", owner), ("budget.update", owner), ("budget.delete", owner)]
    assert events[1].details == {"amount": ["100.00", "2.00"], "thresholds": ["[50, 80, 100]", "[90, 100]"]}


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"amount": "0"}, "amount", "more than $0"),
        ({"amount": "-5"}, "amount", "more than $0"),
        ({"amount": "ten"}, "amount", "valid number"),
        ({"amount": "1.234"}, "amount", "2 decimal places"),
        ({"thresholds": [0, 50]}, "thresholds", "0% is outside 1..1000%"),
        ({"thresholds": [1001]}, "thresholds", "1001% is outside 1..1000%"),
        ({"thresholds": []}, "thresholds", "at least one threshold"),
        ({"thresholds": ["half"]}, "thresholds", "valid integer"),
        ({"recipients": ["finance at acme"]}, "recipients", "neither an email address nor"),
        ({"recipients": ["ftp://files.acme.test/x"]}, "recipients", "neither an email address nor"),
        ({"recipients": ["https://"]}, "recipients", "not a valid http(s) webhook URL"),
        ({"recipients": [""]}, "recipients", "empty recipient"),
        ({"scope": "model", "scope_value": "gpt-40"}, "scope_value", "No call of this project has model 'gpt-40'"),
        ({"scope": "tag", "scope_value": "nightly"}, "scope_value", "No call of this project has tag"),
        ({"scope": "user", "scope_value": ""}, "scope_value", "Name the user"),
        ({"scope_value": "gpt-4o"}, "scope_value", "Leave scope_value empty"),
        ({"scope": "planet", "scope_value": "mars"}, "scope", "not a valid choice"),
        ({"period": "year"}, "period", "not a valid choice"),
        ({"name": ""}, "name", "may not be blank"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(used, owner, fields, field, fragment):
    response = post(logged_in(owner), used, body(**fields))
    assert response.status_code == 400, response.content
    errors = response.json()
    assert list(errors) == [field]
    assert fragment in str(errors[field])


def test_known_scopes_of_every_kind_are_accepted(used, owner):
    client = logged_in(owner)
    for scope, value in [("model", "gpt-4o"), ("provider", "openai"), ("user", "u-1"), ("tag", "batch")]:
        response = post(client, used, body(scope=scope, scope_value=value, period="day"))
        assert response.status_code == 201, response.content


def test_members_subscribe_to_the_daily_digest_and_keys_cannot(project, finance, api_key):
    client = logged_in(finance)
    url = f"/api/v1/spend-digest?project={project.slug}"
    assert client.get(url).json() == {"subscribed": False}
    assert client.put(url).json() == {"subscribed": True}
    assert client.put(url).json() == {"subscribed": True}  # twice is once
    assert DigestSubscription.objects.filter(user=finance).count() == 1
    assert client.delete(url).json() == {"subscribed": False}
    assert bearer(api_key.secret).put("/api/v1/spend-digest").status_code == 403


def test_the_openapi_schema_documents_budgets_alerts_and_the_guard(client):
    schema = client.get("/api/schema/?format=json").json()
    for path in ("/api/v1/budgets", "/api/v1/budgets/{id}", "/api/v1/guard", "/api/v1/alert-rules",
                 "/api/v1/alert-rules/{id}/changes", "/api/v1/alerts", "/api/v1/spend-digest"):
        assert path in schema["paths"], path
    budget = schema["components"]["schemas"]["Budget"]["properties"]
    assert budget["burn"]["allOf"] == [{"$ref": "#/components/schemas/Burn"}]
    assert "Percent of the amount" in budget["thresholds"]["description"]
