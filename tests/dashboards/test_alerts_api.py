"""/api/v1/alert-rules, their state changes, and /api/v1/alerts (the alert history)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from observatory.alerts.models import AlertRule
from observatory.alerts.services import rule_create, rule_evaluate
from observatory.budgets.services import budget_create, budget_evaluate
from tests.alerting import spend
from tests.dashboards.test_metrics_api import bearer, logged_in

pytestmark = pytest.mark.django_db
URL = "/api/v1/alert-rules"
HOOK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


def post(client, project, data: dict):
    return client.post(f"{URL}?project={project.slug}", data, format="json")


@pytest.mark.parametrize("persona", ["owner", "teammate"])
def test_engineers_and_admins_create_rules(request, project, persona):
    response = post(logged_in(request.getfixturevalue(persona)), project, {
        "name": "Slow answers", "kind": "latency", "percentile": "p99", "threshold": "2500", "window_minutes": 10,
        "recipients": ["oncall@acme.test", HOOK], "renotify_minutes": 60,
    })
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["state"], data["scope"], data["min_calls"]) == ("ok", "project", 10)


def test_finance_viewers_and_keys_read_rules_but_cannot_write_them(project, finance, viewer, api_key):
    rule = rule_create(project=project, name="Errors", kind="error_rate", threshold=Decimal(5),
                       recipients=[HOOK])
    for client in (logged_in(finance), logged_in(viewer), bearer(api_key.secret)):
        [listed] = client.get(f"{URL}?project={project.slug}").json()
        assert listed["recipients"] == ["https://hooks.slack.com/…CRET"]
        assert post(client, project, {"name": "x", "kind": "spend", "threshold": "1"}).status_code == 403
        assert client.delete(f"{URL}/{rule.pk}?project={project.slug}").status_code == 403


def test_outsiders_get_404(project, outsider):
    rule = rule_create(project=project, name="Errors", kind="error_rate", threshold=Decimal(5))
    assert logged_in(outsider.user).get(f"{URL}/{rule.pk}?project={project.slug}").status_code == 404
    assert bearer(outsider.secret).get(f"{URL}/{rule.pk}").status_code == 404
    assert bearer(outsider.secret).get(f"{URL}/{rule.pk}/changes").status_code == 404


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"kind": "latency", "threshold": "100"}, "percentile", "Choose the latency percentile"),
        ({"kind": "error_rate", "threshold": "150"}, "threshold", "at most 100"),
        ({"kind": "error_rate", "threshold": "-1"}, "threshold", "more than 0"),
        ({"kind": "spend", "threshold": "5", "window_minutes": 5000}, "window_minutes", "1 to 1440 minutes"),
        ({"kind": "spend", "threshold": "5", "scope": "model", "scope_value": "gpt-40"}, "scope_value",
         "No call of this project has model"),
        ({"kind": "length_share", "threshold": "5", "scope": "user", "scope_value": "u1"}, "scope",
         "can be scoped to"),
        ({"kind": "runaway", "dimension": "user", "factor": "0.5", "min_spend": "1"}, "factor", "more than 1"),
        ({"kind": "runaway", "dimension": "galaxy", "factor": "5", "min_spend": "1"}, "dimension",
         "not a valid choice"),
        ({"kind": "spend", "threshold": "5", "recipients": ["@@"]}, "recipients", "neither an email"),
        ({"kind": "sentiment", "threshold": "5"}, "kind", "not a valid choice"),
    ],
)
def test_bad_rules_are_a_400_naming_the_field(project, owner, fields, field, fragment):
    response = post(logged_in(owner), project, {"name": "Rule", **fields})
    assert response.status_code == 400, response.content
    assert field in response.json() and fragment in str(response.json()[field])


def test_a_rule_is_muted_and_its_changes_and_notifications_are_listed(project, owner, viewer):
    rule = rule_create(project=project, name="Errors", kind="error_rate", threshold=Decimal(10), min_calls=1,
                       recipients=["oncall@acme.test"])
    spend(project, "0.01", datetime.now(UTC) - timedelta(minutes=1), status="error")
    rule_evaluate(rule=AlertRule.objects.select_related("project").get(pk=rule.pk))
    client = logged_in(owner)
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    muted = client.patch(f"{URL}/{rule.pk}?project={project.slug}", {"muted_until": until}, format="json")
    assert muted.status_code == 200, muted.content
    assert muted.json()["muted_until"] == until and muted.json()["state"] == "firing"

    [change] = logged_in(viewer).get(f"{URL}/{rule.pk}/changes?project={project.slug}").json()
    assert (change["from_state"], change["to_state"], change["notified"]) == ("ok", "firing", True)
    [alert] = logged_in(viewer).get(f"/api/v1/alerts?project={project.slug}&rule={rule.pk}").json()
    assert alert["kind"] == "rule_firing" and alert["rule"] == rule.pk
    assert alert["deliveries"] == [{"channel": "email", "recipient": "oncall@acme.test", "status": "pending",
                                    "attempts": 0, "sent_at": None, "last_error": "",
                                    "not_before": alert["deliveries"][0]["not_before"]}]


def test_the_alert_history_pages_filters_and_hides_webhook_secrets(project, owner, viewer):
    budget = budget_create(project=project, name="Monthly", amount=Decimal("1.00"), thresholds=[10, 20, 30],
                           recipients=[HOOK], notify_forecast=False)
    for cost in ("0.15", "0.10", "0.10"):
        spend(project, cost, datetime.now(UTC) - timedelta(minutes=1))
        budget_evaluate(budget=budget)
    url, mine = "/api/v1/alerts", {"project": project.slug}
    history = logged_in(owner).get(url, {**mine, "budget": budget.pk}).json()
    assert [a["subject"].split(" passed ")[1][:3] for a in history] == ["30%", "20%", "10%"]
    assert history[0]["deliveries"][0]["recipient"] == HOOK
    assert logged_in(viewer).get(url, mine).json()[0]["deliveries"][0]["recipient"] == "https://hooks.slack.com/…CRET"
    page = logged_in(owner).get(url, {**mine, "limit": 1, "before": history[0]["id"]}).json()
    assert [a["id"] for a in page] == [history[1]["id"]]
    assert logged_in(owner).get(url, {**mine, "kind": "rule_firing"}).json() == []
    assert logged_in(owner).get(url, {**mine, "limit": 0}).json() == {
        "limit": ["Ensure this value is greater than or equal to 1."]}
    assert logged_in(owner).get(url, {**mine, "kind": "weather"}).status_code == 400
