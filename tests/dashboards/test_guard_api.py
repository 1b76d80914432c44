"""GET /api/v1/guard: hard caps answered from recorded spend, by scope, with the app's key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from observatory.budgets.models import Budget
from observatory.budgets.services import (
    budget_create,
    budget_evaluate,
    budget_guards_refresh,
    budget_update,
    guard_forget,
)
from observatory.tenancy.models import ApiKey
from tests.alerting import spend
from tests.dashboards.test_metrics_api import bearer, logged_in

pytestmark = pytest.mark.django_db
URL = "/api/v1/guard"


@pytest.fixture
def capped(project):
    spend(project, "0.80", datetime.now(UTC) - timedelta(minutes=2), model="gpt-4o", tags=["batch"])
    return budget_create(project=project, name="Hard cap", amount=Decimal("1.00"), hard_cap=True)


def test_calls_are_allowed_while_no_hard_capped_budget_is_spent(api_key, capped):
    budget_create(project=capped.project, name="Soft", amount=Decimal("0.10"))  # spent, but no hard cap
    answer = bearer(api_key.secret).get(URL)
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["allowed"] is True and Decimal(data["remaining_usd"]) == Decimal("0.20")
    [budget] = data["budgets"]
    assert (budget["id"], budget["exhausted"], Decimal(budget["spent_usd"])) == (capped.pk, False, Decimal("0.80"))
    assert data["period_end"] == budget["period_end"] and budget["period_end"].endswith("T00:00:00Z")


def test_a_spent_hard_cap_blocks_as_soon_as_the_spend_is_recorded(api_key, capped):
    client = bearer(api_key.secret)
    assert client.get(URL).json()["allowed"] is True  # now cached
    spend(capped.project, "0.30", datetime.now(UTC) - timedelta(minutes=1))
    assert budget_guards_refresh() == 1  # the refresh job records the spend and clears the cache
    data = client.get(URL).json()
    assert data["allowed"] is False and Decimal(data["remaining_usd"]) == 0
    assert data["budgets"][0]["exhausted"] is True and Decimal(data["budgets"][0]["spent_usd"]) == Decimal("1.10")
    budget_update(budget=Budget.objects.select_related("project").get(pk=capped.pk), amount=Decimal("5.00"))
    assert client.get(URL).json()["allowed"] is True  # raising the cap frees calls at once


def test_a_new_period_is_open_even_before_the_next_evaluation(api_key, capped):
    evaluation = budget_evaluate(budget=capped, now=datetime.now(UTC))
    Budget.objects.filter(pk=capped.pk).update(spent=Decimal("9.00"),
                                               spent_period_start=evaluation.burn.period.start - timedelta(days=40))
    guard_forget(project_id=capped.project_id)
    assert bearer(api_key.secret).get(URL).json()["allowed"] is True  # that spend was an earlier period's


def test_scoped_caps_cover_only_calls_in_their_scope(api_key, capped):
    project = capped.project
    Budget.objects.filter(pk=capped.pk).delete()
    model_cap = budget_create(project=project, name="gpt-4o", scope="model", scope_value="gpt-4o",
                              amount=Decimal("0.50"), hard_cap=True)
    tag_cap = budget_create(project=project, name="batch", scope="tag", scope_value="batch",
                            amount=Decimal("5.00"), hard_cap=True)
    client = bearer(api_key.secret)
    assert client.get(URL, {"model": "gpt-4o-mini"}).json() == {"allowed": True, "remaining_usd": None,
                                                                 "period_end": None, "budgets": []}
    blocked = client.get(URL, {"model": "gpt-4o", "tag": "batch,eu"}).json()
    assert blocked["allowed"] is False
    assert [b["id"] for b in blocked["budgets"]] == [model_cap.pk, tag_cap.pk]
    assert client.get(URL, {"tag": ["eu", "batch"]}).json()["allowed"] is True
    assert client.get(URL, {"budget": model_cap.pk}).json()["allowed"] is False


def test_the_guard_wants_the_applications_key_and_known_parameters(project, api_key, owner, capped):
    assert logged_in(owner).get(URL).status_code == 401
    client = bearer(api_key.secret)
    unknown = client.get(URL, {"modle": "gpt-4o"})
    assert unknown.status_code == 400 and "modle" in unknown.json()
    assert client.get(URL, {"budget": "first"}).json() == {"budget": ["'first' is not a budget id."]}


def test_the_guard_is_throttled_per_key(api_key, capped):
    ApiKey.objects.filter(pk=api_key.key.pk).update(rate_limit_per_second=1)
    client = bearer(api_key.secret)
    statuses = [client.get(URL).status_code for _ in range(5)]
    # Five requests span at most two one-second windows: at most two get through.
    assert statuses.count(429) >= 3 and statuses[0] == 200
