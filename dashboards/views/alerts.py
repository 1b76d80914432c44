"""The Alerts page: alert rules with their state and when they last fired, and the alert
history (what was sent, to whom, how delivery went, and every rule's state changes). Members
who may manage alerts (the API's manage_alerts: admins and engineers) create, edit and delete
rules here."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from dashboards.forms import AlertRuleForm
from dashboards.pages import Page, project_page
from dashboards.selectors.alerts import notifications_recent, rule_changes_recent, rules_with_last_fired
from dashboards.views.editing import Editing, edit_post, stored_edit_form
from observatory.alerts.models import AlertRule
from observatory.alerts.services import rule_create, rule_delete, rule_update
from observatory.tenancy.roles import Capability

RULES = Editing(page_name="alerts", model=AlertRule, form=AlertRuleForm, capability=Capability.MANAGE_ALERTS,
                create=rule_create, update=rule_update, delete=rule_delete, argument="rule", noun="alert rule")


def _show(page: Page, *, status: int = 200, create_form: AlertRuleForm | None = None,
          edit_form: AlertRuleForm | None = None, editing_id: str | None = None) -> HttpResponse:
    can_edit = page.can(Capability.MANAGE_ALERTS)
    rules = rules_with_last_fired(project=page.project, reveal_recipients=can_edit)
    # The history carries spend (budget thresholds, digests): the API reads it with view_costs.
    can_read_history = page.can(Capability.VIEW_COSTS)
    return page.render("dashboards/alerts.html", {
        "rules": rules, "can_edit": can_edit, "create_open": not rules,
        "create_form": (create_form or AlertRuleForm()) if can_edit else None,
        "edit_form": edit_form or stored_edit_form(page, RULES),
        "editing_id": editing_id or page.request.GET.get("edit"),
        "can_read_history": can_read_history,
        "notifications": notifications_recent(
            project=page.project, reveal_budget_recipients=page.can(Capability.MANAGE_BUDGETS),
            reveal_rule_recipients=can_edit) if can_read_history else [],
        "changes": rule_changes_recent(project=page.project), "now": timezone.now(),
    }, status=status)


@project_page("alerts")
def alerts(request: HttpRequest, page: Page) -> HttpResponse:
    if request.method == "POST":
        return edit_post(page, RULES, _show)
    return _show(page)
