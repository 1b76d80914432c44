"""Where budgets (issue 6) plug into the pages built before them.

Until budgets exist, `budget_lines` returns nothing and every page hides what depends on it:
the Overview's "vs budget", the budget lines on the Cost page's month burn, the Finance
page's budget column. Once budgets merge, this function returns the project's monthly
budgets (reading them through the budgets app's selectors) and those pages show them with
no other change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from observatory.tenancy.models import Project


@dataclass(frozen=True)
class BudgetLine:
    name: str
    amount: Decimal  # USD for the month
    spent: Decimal  # month to date, as the budget counts it
    url: str | None = None  # the budget's page


def budget_lines(*, project: Project, month_start: datetime) -> list[BudgetLine]:
    """The budgets that apply to `project` in the month starting at `month_start`."""
    return []
