"""Reads for budgets: spend of a scope, burn and forecast, and what the guard answers.

Spend comes from the metrics engine (rollups for whole buckets, raw calls only for the edges
of the window and for minutes the rollup job has not reached), so it is exact to the second.
A tag is not a rollup dimension: tag scopes sum raw calls of the period through the call
store's (project_id, start_time) index, which costs a read of the project's calls in the
period; they are meant for moderate volumes (see README, "Budgets and alerts").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from observatory.budgets.models import Budget
from observatory.budgets.periods import Period, PeriodBounds, period_bounds
from observatory.budgets.scopes import ScopeKind, scope_filters, scope_matches
from observatory.calls.models import MODEL_CALL_KINDS
from observatory.metrics.partitions import rollups_from
from observatory.metrics.selectors import metrics_query
from observatory.tenancy.models import Project

# The burn rate is the spend over this much of the recent past (or the period so far, if
# shorter): long enough to smooth minute-to-minute noise, short enough to see a change today.
BURN_WINDOWS = {Period.DAY: timedelta(hours=3), Period.WEEK: timedelta(hours=24), Period.MONTH: timedelta(hours=24)}
_MODEL_KINDS = sorted(MODEL_CALL_KINDS)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Spend:
    cost: Decimal
    calls: int
    unpriced_calls: int  # model calls without a price: not in `cost`, never counted as $0


def _raw_scope_condition(scope: str) -> str:
    if scope == ScopeKind.TAG:
        return "tags @> ARRAY[%(value)s]::text[]"
    return "user_id = %(value)s"  # the other scope read from raw calls


def _raw_spend(*, project: Project, scope: str, value: str, start: datetime, end: datetime,
               group_by_model: bool = False, limit: int | None = None) -> list[tuple]:
    head, group = ("model, ", " GROUP BY model ORDER BY 3 DESC NULLS LAST, 2 DESC LIMIT %(limit)s") \
        if group_by_model else ("", "")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {head}count(*), coalesce(sum(cost), 0), count(*) FILTER (WHERE cost IS NULL)
            FROM calls_call
            WHERE project_id = %(project)s AND start_time >= %(start)s AND start_time < %(end)s
              AND kind = ANY(%(kinds)s) AND {_raw_scope_condition(scope)}{group}
            """,
            {"project": project.pk, "start": start, "end": end, "kinds": _MODEL_KINDS, "value": value,
             "limit": limit},
        )
        return cursor.fetchall()


def scope_spend(*, project: Project, scope: str, value: str, start: datetime, end: datetime,
                now: datetime | None = None) -> Spend:
    """Model calls of the scope that started in [start, end)."""
    if end <= start:
        return Spend(cost=ZERO, calls=0, unpriced_calls=0)
    if scope == ScopeKind.TAG:
        calls, cost, unpriced = _raw_spend(project=project, scope=scope, value=value, start=start, end=end)[0]
        return Spend(cost=Decimal(cost), calls=int(calls), unpriced_calls=int(unpriced))
    result = metrics_query(project=project, start=start, end=end, metrics=["cost", "count", "unpriced_count"],
                           filters=scope_filters(scope=scope, value=value), now=now)
    if not result.rows:
        return Spend(cost=ZERO, calls=0, unpriced_calls=0)
    row = result.rows[0]
    return Spend(cost=row["cost"], calls=row["count"], unpriced_calls=row["unpriced_count"])


def scope_spend_by_model(*, project: Project, scope: str, value: str, start: datetime, end: datetime,
                         now: datetime | None = None, limit: int = 5) -> list[tuple[str, int, Decimal]]:
    """The models that spent most in the scope over [start, end): (model, calls, cost)."""
    if end <= start:
        return []
    if scope in (ScopeKind.TAG, ScopeKind.USER):  # per-user rollups have no model dimension
        rows = _raw_spend(project=project, scope=scope, value=value, start=start, end=end, group_by_model=True,
                          limit=limit)
        return [(model or "(none)", int(calls), Decimal(cost)) for model, calls, cost, _ in rows]
    result = metrics_query(project=project, start=start, end=end, metrics=["count", "cost"], group_by=["model"],
                           filters=scope_filters(scope=scope, value=value), order_by="-cost", limit=limit, now=now)
    return [(row["model"] or "(none)", row["count"], row["cost"]) for row in result.rows]


def scope_value_exists(*, project: Project, scope: str, value: str, now: datetime | None = None) -> bool:
    """Whether any call of the project ever had this model, provider, feature, environment,
    user or tag (as far back as rollups go). A budget or rule on a value nothing has used is
    refused: it is almost always a typo, and would stay at $0 forever without saying so."""
    if scope == ScopeKind.PROJECT:
        return True
    if scope == ScopeKind.TAG:
        # Trace summaries carry the union of their calls' tags: far fewer rows than calls.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM calls_trace WHERE project_id = %s AND tags @> ARRAY[%s]::text[])",
                [project.pk, value],
            )
            return cursor.fetchone()[0]
    now = (now or timezone.now()).astimezone(UTC)
    result = metrics_query(project=project, start=rollups_from(today=now.astimezone(UTC).date()),
                           end=now + timedelta(minutes=settings.INGEST_MAX_FUTURE_MINUTES + 1), metrics=["count"],
                           filters=scope_filters(scope=scope, value=value), now=now)
    return bool(result.rows and result.rows[0]["count"])


def budgets_list(*, project: Project):
    """The project's budgets by name, each with its project loaded (budget_burn reads it)."""
    return Budget.objects.filter(project=project).select_related("project").order_by("name", "pk")


@dataclass(frozen=True)
class Burn:
    """Where a budget stands in its current period, as of `now`."""

    now: datetime
    period: PeriodBounds
    amount: Decimal
    spent: Decimal
    calls: int
    unpriced_calls: int
    rate_per_hour: Decimal  # over [rate_since, now)
    rate_since: datetime
    projected_spend: Decimal  # at the end of the period, at this rate
    exhausts_at: datetime | None  # when the amount runs out at this rate, if within the period
    # A whole burn window lies inside the period: a rate from the first minutes of a month
    # says little about the month, so no forecast is sent on it.
    forecast_reliable: bool

    @property
    def share(self) -> Decimal:
        return self.spent / self.amount

    @property
    def projected_share(self) -> Decimal:
        return self.projected_spend / self.amount

    @property
    def remaining(self) -> Decimal:
        return max(self.amount - self.spent, ZERO)

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.amount

    def crossed(self, threshold: int) -> bool:
        # Multiplied, not divided: exactly 80 % of the amount counts as crossing 80 %.
        return self.spent * 100 >= self.amount * threshold

def burn_forecast(*, spent: Decimal, amount: Decimal, rate_per_hour: Decimal, now: datetime,
             period_end: datetime) -> tuple[Decimal, datetime | None]:
    """Spend at the end of the period if the rate holds, and the moment the amount runs out
    (None if it already has, or will not before the period ends)."""
    hours_left = Decimal((period_end - now).total_seconds()) / 3600
    projected = spent + rate_per_hour * max(hours_left, ZERO)
    if spent >= amount or rate_per_hour <= 0:
        return projected, None
    hours_to_exhaust = (amount - spent) / rate_per_hour
    if hours_to_exhaust >= hours_left:
        # Compared before any date is built: at a tiny rate the moment would lie beyond the
        # largest date Python can represent.
        return projected, None
    return projected, now + timedelta(hours=float(hours_to_exhaust))


def budget_burn(*, budget: Budget, now: datetime | None = None) -> Burn:
    now = (now or timezone.now()).astimezone(UTC)
    project = budget.project
    bounds = period_bounds(period=budget.period, time_zone=project.time_zone, moment=now)
    scope = {"project": project, "scope": budget.scope, "value": budget.scope_value, "now": now}
    spent = scope_spend(start=bounds.start, end=now, **scope)
    window = BURN_WINDOWS[budget.period]
    rate_since = max(bounds.start, now - window)
    hours = Decimal((now - rate_since).total_seconds()) / 3600
    rate = ZERO
    if hours > 0:
        recent = spent if rate_since == bounds.start else scope_spend(start=rate_since, end=now, **scope)
        rate = recent.cost / hours
    projected, exhausts_at = burn_forecast(spent=spent.cost, amount=budget.amount, rate_per_hour=rate, now=now,
                                      period_end=bounds.end)
    return Burn(now=now, period=bounds, amount=budget.amount, spent=spent.cost, calls=spent.calls,
                unpriced_calls=spent.unpriced_calls, rate_per_hour=rate, rate_since=rate_since,
                projected_spend=projected, exhausts_at=exhausts_at, forecast_reliable=now - bounds.start >= window)


# --- The guard ---------------------------------------------------------------------------

@dataclass(frozen=True)
class GuardBudget:
    """What the guard needs of a hard-capped budget, as cached."""

    id: int
    name: str
    scope: str
    scope_value: str
    period: str
    amount: Decimal
    spent: Decimal | None
    spent_period_start: datetime | None
    spent_at: datetime | None


def guard_cache_key(*, project_id: int) -> str:
    return f"budget-guard:v1:{project_id}"


def _guard_budgets_load(project_id: int) -> list[GuardBudget]:
    fields = [name for name in GuardBudget.__dataclass_fields__]
    rows = Budget.objects.filter(project_id=project_id, hard_cap=True, enabled=True).order_by("pk").values(*fields)
    return [GuardBudget(**row) for row in rows]


def guard_budgets(*, project_id: int) -> list[GuardBudget]:
    """The project's enabled hard-capped budgets with their last evaluated spend, from the
    cache (BUDGET_GUARD_CACHE_SECONDS at most; evaluations delete the entry when they write)."""
    key = guard_cache_key(project_id=project_id)
    try:
        cached = cache.get(key)
    except Exception:  # a cache server that is down slows the guard, it does not break it
        return _guard_budgets_load(project_id)
    if cached is None:
        cached = _guard_budgets_load(project_id)
        try:
            cache.set(key, cached, settings.BUDGET_GUARD_CACHE_SECONDS)
        except Exception:
            pass
    return cached


@dataclass(frozen=True)
class GuardVerdict:
    budget: GuardBudget
    spent: Decimal
    remaining: Decimal
    period: PeriodBounds
    exhausted: bool


@dataclass(frozen=True)
class GuardAnswer:
    allowed: bool
    verdicts: list[GuardVerdict]

    @property
    def binding(self) -> GuardVerdict | None:
        """The budget closest to running out: its remaining amount bounds the caller's."""
        return min(self.verdicts, key=lambda verdict: verdict.remaining, default=None)


def budget_guard_check(*, project: Project, attributes: Mapping[str, str | Sequence[str]],
                       budget_id: int | None = None, now: datetime | None = None) -> GuardAnswer:
    """Whether a call with `attributes` may go ahead: blocked when any enabled hard-capped
    budget whose scope covers it is spent (or only budget `budget_id`, when given)."""
    now = (now or timezone.now()).astimezone(UTC)
    verdicts = []
    for budget in guard_budgets(project_id=project.pk):
        if budget_id is not None:
            if budget.id != budget_id:
                continue
        elif not scope_matches(scope=budget.scope, value=budget.scope_value, attributes=attributes):
            continue
        bounds = period_bounds(period=budget.period, time_zone=project.time_zone, moment=now)
        # Spend recorded for an earlier period says nothing about this one: it starts clean.
        spent = budget.spent if budget.spent is not None and budget.spent_period_start == bounds.start else ZERO
        verdicts.append(GuardVerdict(budget=budget, spent=spent, remaining=max(budget.amount - spent, ZERO),
                                     period=bounds, exhausted=spent >= budget.amount))
    return GuardAnswer(allowed=not any(verdict.exhausted for verdict in verdicts), verdicts=verdicts)
