from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from dashboards.pages import Page, project_page
from dashboards.selectors.finance import Pivot, finance_get
from dashboards.tables import Column, Table
from observatory.tenancy.models import Project
from observatory.tenancy.roles import Capability


def pivot_table(name: str, title: str, pivot: Pivot) -> Table:
    columns = [Column("day", "Day (UTC)", "date"), *[Column(f"col:{key}", key, "money") for key in pivot.columns],
               Column("total", "Total", "money"), Column("unpriced_count", "Unpriced calls (not in total)", "int")]
    return Table(name=name, title=title, columns=columns, rows=pivot.rows, empty="No spend in this range.")


@project_page("finance", Capability.VIEW_COSTS, default_range="month")
def finance(request: HttpRequest, page: Page) -> HttpResponse:
    # Roles are per organization, so whoever may see this project's costs may see its siblings'.
    projects = list(Project.objects.filter(organization=page.project.organization).order_by("name"))
    data = finance_get(project=page.project, projects=projects, time_range=page.range, now=timezone.now())
    month_rows = []
    for month in data.months:
        budget = sum((line.amount for line in month.budgets), start=0) or None
        month_rows.append({
            "project": month.project.name, "project_url": page.url("cost", project=month.project),
            "spent": month.forecast.spent, "daily_rate": month.forecast.daily_rate,
            "projected": month.forecast.projected, "budget": budget,
            "budget_used": month.forecast.spent / budget if budget else None,
        })
    month_columns = [Column("project", "Project"), Column("spent", "Month to date", "money"),
                     Column("daily_rate", "Daily run rate (7 days)", "money"),
                     Column("projected", "Forecast to month end", "money")]
    if any(month.budgets for month in data.months):  # budgets' state, once budgets exist (dashboards/hooks.py)
        month_columns += [Column("budget", "Budget", "money"), Column("budget_used", "Budget used", "pct")]
    tables = [
        Table(name="month", title="This month by project", columns=month_columns, rows=month_rows,
              note="Months follow each project's time zone; the forecast adds the last 7 days' average daily "
                   "spend for every day left."),
        pivot_table("daily-by-project", "Daily spend by project", data.by_project),
        pivot_table("daily-by-model", f"Daily spend by model ({page.project.name})", data.by_model),
        pivot_table("daily-by-feature", f"Daily spend by feature ({page.project.name})", data.by_feature),
    ]
    return page.render("dashboards/finance.html", {"data": data}, tables=tables)
