"""The Budgets page: every budget of a project with where it stands this period.

Burn comes from observatory.budgets.selectors.budget_burn, the same reading the API's `burn`
and the minute evaluation use, so the page, the API and the emails agree to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from observatory.budgets.models import Budget
from observatory.budgets.scopes import scope_label
from observatory.budgets.selectors import Burn, budget_burn, budgets_list
from observatory.notifications.recipients import recipient_masked
from observatory.tenancy.models import Project


@dataclass(frozen=True)
class BudgetStanding:
    budget: Budget
    burn: Burn
    state: str  # a short word for the badge
    tone: str  # the badge's colour: ok, warn or error
    recipients: list[str]

    @property
    def scope(self) -> str:
        return scope_label(scope=self.budget.scope, value=self.budget.scope_value)

    @property
    def thresholds_crossed(self) -> list[int]:
        return [threshold for threshold in self.budget.thresholds if self.burn.crossed(threshold)]


def _state(*, budget: Budget, burn: Burn) -> tuple[str, str]:
    """What a budget owner needs to know first: is the money gone, going, or fine."""
    if not budget.enabled:
        return "disabled", ""
    if burn.exhausted:
        return ("capped" if budget.hard_cap else "spent"), "error"
    crossed = [threshold for threshold in budget.thresholds if burn.crossed(threshold)]
    if crossed:
        return f"past {max(crossed)}%", "warn"
    if burn.exhausts_at is not None:
        return "runs out early", "warn"
    return "ok", "ok"


def budgets_standing(*, project: Project, reveal_recipients: bool, now: datetime | None = None
                     ) -> list[BudgetStanding]:
    """Each budget of the project by name with its burn. Webhook URLs are secrets (their path
    is the password): shown whole only when `reveal_recipients`, as the API does."""
    standings = []
    for budget in budgets_list(project=project):
        burn = budget_burn(budget=budget, now=now)
        state, tone = _state(budget=budget, burn=burn)
        recipients = budget.recipients if reveal_recipients else [recipient_masked(r) for r in budget.recipients]
        standings.append(BudgetStanding(budget=budget, burn=burn, state=state, tone=tone, recipients=recipients))
    return standings
