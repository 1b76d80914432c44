"""The Alerts page: rules with their state and when they last fired, rules created, edited
and deleted by admins and engineers with the API's validation, and the alert history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from observatory.alerts.models import AlertRule
from observatory.audit.models import AuditEvent
from observatory.alerts.services import rule_create, rule_evaluate
from observatory.budgets.services import budget_create, budget_evaluate
from tests.alerting import spend
from tests.dashboards.conftest import IMG, PAYLOADS, SCRIPT, logged_in

HOOK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


def url(project) -> str:
    return f"/p/{project.slug}/alerts/"


def form(**fields) -> dict:
    return {"action": "create", "name": "Slow answers", "kind": "latency", "percentile": "p99", "threshold": "2500",
            "window_minutes": "10", "min_calls": "10", "scope": "project", "scope_value": "", "baseline_hours": "24",
            "recipients": "", "enabled": "on", **fields}


@pytest.mark.parametrize("persona", ["owner", "teammate"])
def test_engineers_and_admins_create_a_rule_and_see_it_listed(request, project, persona):
    user = request.getfixturevalue(persona)
    client = logged_in(user)
    response = client.post(url(project), form(recipients=f"oncall@acme.test, {HOOK}", renotify_minutes="60"))
    assert response.status_code == 302 and response["Location"] == url(project)
    rule = AlertRule.objects.get(project=project)
    assert (rule.kind, rule.percentile, rule.threshold, rule.window_minutes, rule.renotify_minutes, rule.state) == (
        "latency", "p99", Decimal("2500"), 10, 60, "ok")
    assert rule.recipients == ["oncall@acme.test", HOOK] and rule.created_by == user
    event = AuditEvent.objects.get(action="alert_rule.create")
    assert (event.actor, event.target, event.details["kind"]) == (user, "Slow answers", "latency")
    page = client.get(url(project))
    [row] = page.context["rules"]
    assert row.rule == rule and row.last_fired_at is None
    body = page.content.decode()
    assert "Created the alert rule" in body and "2500 ms" in body and HOOK in body


def test_a_rule_is_edited_and_deleted(project, teammate):
    rule = rule_create(project=project, name="Errors", kind="error_rate", threshold=Decimal(5))
    client = logged_in(teammate)
    shown = client.get(url(project), {"edit": rule.pk})
    assert shown.context["edit_form"].instance == rule and 'id="edit_threshold"' in shown.content.decode()
    muted = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(url(project), form(action="update", id=rule.pk, name="Errors", kind="error_rate",
                                              percentile="", threshold="7.5", window_minutes="5", muted_until=muted))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.threshold == Decimal("7.5") and rule.muted_until is not None
    assert "muted until" in client.get(url(project)).content.decode()
    updated = AuditEvent.objects.get(action="alert_rule.update")
    assert updated.actor == teammate and set(updated.details) == {"threshold", "muted_until"}
    assert client.post(url(project), {"action": "delete", "id": rule.pk}).status_code == 302
    assert not AlertRule.objects.filter(pk=rule.pk).exists()
    assert AuditEvent.objects.get(action="alert_rule.delete").actor == teammate


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"kind": "latency", "percentile": "", "threshold": "100"}, "percentile", "Choose the latency percentile"),
        ({"kind": "error_rate", "threshold": "150"}, "threshold", "at most 100"),
        ({"kind": "error_rate", "threshold": "-1"}, "threshold", "more than 0"),
        ({"kind": "spend", "threshold": "5", "window_minutes": "5000"}, "window_minutes", "1 to 1440 minutes"),
        ({"kind": "spend", "threshold": "5", "scope": "model", "scope_value": "gpt-40"}, "scope_value",
         "No call of this project has model"),
        ({"kind": "length_share", "threshold": "5", "scope": "user", "scope_value": "u1"}, "scope",
         "can be scoped to"),
        ({"kind": "runaway", "threshold": "", "dimension": "user", "factor": "0.5", "min_spend": "1"}, "factor",
         "more than 1"),
        ({"kind": "runaway", "threshold": "", "dimension": "galaxy", "factor": "5", "min_spend": "1"}, "dimension",
         "not one of the available choices"),
        ({"kind": "spend", "threshold": "5", "recipients": "@@"}, "recipients", "neither an email"),
        ({"kind": "sentiment", "threshold": "5"}, "kind", "not one of the available choices"),
        ({"name": ""}, "name", "required"),
    ],
)
def test_bad_rules_come_back_naming_the_field_and_store_nothing(project, owner, fields, field, fragment):
    response = logged_in(owner).post(url(project), form(**fields))
    assert response.status_code == 400
    errors = response.context["create_form"].errors
    assert field in errors, errors
    assert fragment in " ".join(errors[field])
    assert 'class="field invalid"' in response.content.decode()
    assert not AlertRule.objects.filter(project=project).exists()
    assert not AuditEvent.objects.filter(action__startswith="alert_rule.").exists()


@pytest.mark.parametrize("persona", ["finance", "viewer"])
def test_finance_and_viewers_read_rules_without_forms_and_their_posts_are_refused(request, project, persona):
    rule = rule_create(project=project, name="Errors", kind="error_rate", threshold=Decimal(5), recipients=[HOOK])
    client = logged_in(request.getfixturevalue(persona))
    page = client.get(url(project), {"edit": rule.pk})
    body = page.content.decode()
    assert page.status_code == 200 and page.context["create_form"] is None and page.context["edit_form"] is None
    assert 'name="action"' not in body and "Errors" in body
    assert HOOK not in body and "hooks.slack.com/…CRET" in body
    for data in (form(), {"action": "delete", "id": rule.pk}, form(action="update", id=rule.pk), {"action": "x"}):
        assert client.post(url(project), data).status_code == 403
    assert list(AlertRule.objects.filter(project=project)) == [rule]


def test_changes_need_a_csrf_token_and_outsiders_get_404(project, owner, outsider):
    rule = rule_create(project=project, name="Errors", kind="error_rate", threshold=Decimal(5))
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(url(project), form()).status_code == 403
    assert client.post(url(project), {"action": "delete", "id": rule.pk}).status_code == 403
    stranger = logged_in(outsider.user)
    assert stranger.get(url(project)).status_code == 404
    assert stranger.post(url(project), {"action": "delete", "id": rule.pk}).status_code == 404
    theirs = rule_create(project=outsider.project, name="Globex", kind="error_rate", threshold=Decimal(5))
    assert logged_in(owner).post(url(project), {"action": "delete", "id": theirs.pk}).status_code == 404
    assert AlertRule.objects.count() == 2


def test_the_history_lists_what_was_sent_and_every_state_change_newest_first(project, owner, viewer):
    rule = rule_create(project=project, name="Errors", kind="error_rate", threshold=Decimal(10), min_calls=1,
                       recipients=["oncall@acme.test"])
    budget = budget_create(project=project, name="Monthly", amount=Decimal("1.00"), thresholds=[10],
                           recipients=[HOOK], notify_forecast=False)
    spend(project, "0.50", datetime.now(UTC) - timedelta(minutes=1), status="error")
    rule_evaluate(rule=AlertRule.objects.select_related("project").get(pk=rule.pk))
    budget_evaluate(budget=budget)

    page = logged_in(owner).get(url(project))
    sent = page.context["notifications"]
    assert [(s.notification.kind, s.about) for s in sent] == [("budget_threshold", "Monthly"),
                                                             ("rule_firing", "Errors")]
    assert sent[0].deliveries[0]["recipient"] == HOOK and sent[0].deliveries[0]["status"] == "pending"
    [change] = page.context["changes"]
    assert (change.rule, change.from_state, change.to_state) == (rule, "ok", "firing")
    [row] = page.context["rules"]
    assert row.last_fired_at == change.created_at
    body = page.content.decode()
    assert 'Budget "Monthly" passed 10%' in body.replace("&quot;", '"') and "Waiting to be sent" in body
    # Viewers may read the history, not the webhook it went to.
    body = logged_in(viewer).get(url(project)).content.decode()
    assert HOOK not in body and "hooks.slack.com/…CRET" in body and "oncall@acme.test" in body


def test_an_empty_project_explains_rules(project, owner, finance):
    body = logged_in(owner).get(url(project)).content.decode()
    assert "No alert rules yet" in body and "<details open>" in body and "Nothing sent yet" in body
    assert "Admins and engineers create alert rules" in logged_in(finance).get(url(project)).content.decode()


def test_payloads_in_rule_names_and_sent_subjects_render_inert(pages_project, owner):
    for payload in PAYLOADS:
        rule_create(project=pages_project, name=payload, kind="spend", threshold=Decimal("0.0001"), scope="model",
                    scope_value=payload)
    budget = budget_create(project=pages_project, name=SCRIPT, amount=Decimal("0.01"), thresholds=[1])
    budget_evaluate(budget=budget)
    client = logged_in(owner)
    first = AlertRule.objects.filter(project=pages_project).order_by("pk").first()
    for page in (client.get(url(pages_project)), client.get(url(pages_project), {"edit": first.pk})):
        assert page.context["notifications"]
        body = page.content.decode()
        assert SCRIPT not in body and IMG not in body
        assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in body


def test_rule_emails_link_to_this_page(project, owner, settings):
    rule = rule_create(project=project, name="Errors", kind="error_rate", threshold=Decimal(10), min_calls=1,
                       recipients=["oncall@acme.test"])
    spend(project, "0.01", datetime.now(UTC) - timedelta(minutes=1), status="error")
    notification = rule_evaluate(rule=AlertRule.objects.select_related("project").get(pk=rule.pk)).notification
    link = notification.context["link"]
    assert link == f"{settings.SITE_URL}{url(project)}"
    assert logged_in(owner).get(link.removeprefix(settings.SITE_URL)).status_code == 200
