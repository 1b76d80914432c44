"""The Budgets page: every budget with its burn this period; members who may manage budgets
(the API's manage_budgets: admins, engineers, finance) create, edit and delete them here."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dashboards.forms import BudgetForm
from dashboards.pages import Page, project_page
from dashboards.selectors.budgets import BudgetStanding, budgets_standing
from dashboards.tables import Column, Table
from dashboards.views.editing import Editing, edit_post, stored_edit_form
from observatory.budgets.models import Budget
from observatory.budgets.services import budget_create, budget_delete, budget_update
from observatory.tenancy.roles import Capability

BUDGETS = Editing(page_name="budgets", model=Budget, form=BudgetForm, capability=Capability.MANAGE_BUDGETS,
                  create=budget_create, update=budget_update, delete=budget_delete, argument="budget",
                  noun="budget")


def _table(standings: list[BudgetStanding]) -> Table:
    """The CSV export of the list, with exact figures."""
    return Table(name="budgets", title="Budgets", columns=[
        Column("name", "Budget"), Column("scope", "Scope"), Column("period", "Period"),
        Column("amount", "Amount", "money"), Column("spent", "Spent", "money"), Column("share", "Used", "pct"),
        Column("projected", "Projected at period end", "money"), Column("exhausts_at", "Runs out", "datetime"),
        Column("state", "State"),
    ], rows=[{"name": s.budget.name, "scope": s.scope, "period": s.budget.period, "amount": s.budget.amount,
              "spent": s.burn.spent, "share": s.burn.share, "projected": s.burn.projected_spend,
              "exhausts_at": s.burn.exhausts_at, "state": s.state} for s in standings])


def _show(page: Page, *, status: int = 200, create_form: BudgetForm | None = None,
          edit_form: BudgetForm | None = None, editing_id: str | None = None) -> HttpResponse:
    can_edit = page.can(Capability.MANAGE_BUDGETS)
    standings = budgets_standing(project=page.project, reveal_recipients=can_edit)
    return page.render("dashboards/budgets.html", {
        "standings": standings, "can_edit": can_edit, "create_open": not standings,
        "create_form": (create_form or BudgetForm()) if can_edit else None,
        "edit_form": edit_form or stored_edit_form(page, BUDGETS),
        "editing_id": editing_id or page.request.GET.get("edit"),
    }, tables=[_table(standings)], status=status)


@project_page("budgets", Capability.VIEW_COSTS)
def budgets(request: HttpRequest, page: Page) -> HttpResponse:
    if request.method == "POST":
        return edit_post(page, BUDGETS, _show)
    return _show(page)
