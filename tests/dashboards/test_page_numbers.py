"""What the pages say agrees with the calls stored: totals, unknown prices, forecasts, quality."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from dashboards.selectors.common import month_forecast
from dashboards.timerange import local_month_end, local_month_start
from observatory.calls.records import ScoreRecord
from observatory.calls.services import calls_write
from observatory.calls.updates import scores_write
from tests.dashboards.conftest import logged_in
from tests.records import record


def raw(project, sql: str, start: datetime, end: datetime):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql} FROM calls_call WHERE project_id = %s AND kind IN ('generation', 'embedding') "
                       "AND start_time >= %s AND start_time < %s", [project.pk, start, end])
        return cursor.fetchone()


def test_overview_headline_matches_the_stored_calls(pages_project, viewer):
    response = logged_in(viewer).get(f"/p/{pages_project.slug}/", {"range": "24h"})
    time_range = response.context["page"].range
    count, errors, cost, unpriced = raw(pages_project, "count(*), count(*) FILTER (WHERE status = 'error'), "
                                        "coalesce(sum(cost), 0), count(*) FILTER (WHERE cost IS NULL)",
                                        time_range.start, time_range.end)
    totals = response.context["data"].totals
    assert (totals["count"], totals["errors"], totals["cost"], totals["unpriced_count"]) == (count, errors, cost,
                                                                                              unpriced)
    assert count == 5 and unpriced == 3  # the unknown model and both hostile calls
    top = {row["model"]: row for row in response.context["data"].top_models}
    assert top["my-finetune"]["cost"] is None  # unknown, never $0


def test_overview_of_a_day_without_calls_yet_reads_zero(project, viewer):
    """Just after midnight today has no calls: the headline says so instead of failing."""
    calls_write(project=project, records=[record(start_time=datetime.now(UTC) - timedelta(days=2))])
    response = logged_in(viewer).get(f"/p/{project.slug}/", {"range": "7d"})
    assert response.status_code == 200
    assert response.context["data"].today == {"count": 0, "cost": Decimal(0)}
    assert "<h3>Spend today</h3><p class=\"figure\">$0.00</p>" in response.content.decode()


def test_filters_narrow_every_number(pages_project, owner):
    response = logged_in(owner).get(f"/p/{pages_project.slug}/", {"range": "24h", "feature": "support-chat"})
    assert response.context["data"].totals["count"] == 1
    assert 'value="support-chat" selected' in response.content.decode()


def test_cost_page_lists_unknown_prices_apart(pages_project, finance):
    data = logged_in(finance).get(f"/p/{pages_project.slug}/cost/", {"range": "24h"}).context["data"]
    by_model = {row["model"]: row for row in data.per_model}
    assert by_model["my-finetune"]["cost"] is None and by_model["my-finetune"]["unpriced_count"] == 1
    assert by_model["gpt-4o-mini"]["cost_per_call"] == by_model["gpt-4o-mini"]["cost"]  # one priced call
    assert "my-finetune" in {call.model for call in data.unpriced}
    spenders = {row["user_id"]: row for row in data.spenders}
    assert spenders["carol"]["cost"] is None and spenders["alice"]["cost"] > 0


def test_the_month_forecast_adds_the_weeks_run_rate_for_the_days_left(pages_project):
    now = datetime.now(UTC)
    tz = ZoneInfo("UTC")
    forecast = month_forecast(project=pages_project, now=now, tz=tz)
    (spent,) = raw(pages_project, "coalesce(sum(cost), 0)", local_month_start(now, tz), now)
    (week,) = raw(pages_project, "coalesce(sum(cost), 0)", now - timedelta(days=7), now)
    assert forecast.spent == spent and forecast.daily_rate == week / 7
    days_left = Decimal((local_month_end(now, tz) - now).total_seconds()) / 86400
    assert forecast.projected == spent + week / 7 * days_left


def test_finance_tables_pivot_spend_by_day_and_export_exact_decimals(pages_project, finance):
    client = logged_in(finance)
    response = client.get(f"/p/{pages_project.slug}/finance/", {"range": "7d"})
    by_model = response.context["tables"]["daily-by-model"]
    time_range = response.context["page"].range
    (total,) = raw(pages_project, "coalesce(sum(cost), 0)", time_range.start, time_range.end)
    assert sum(row["total"] for row in by_model.rows) == total
    assert all(row.get("col:my-finetune", None) is None for row in by_model.rows)  # unknown, not $0
    assert sum(row["unpriced_count"] for row in by_model.rows) == 3
    exported = list(csv.reader(io.StringIO(client.get(f"/p/{pages_project.slug}/finance/",
                                                      {"range": "7d", "export": "daily-by-model"}).content.decode())))
    assert exported[0][0] == "Day (UTC)" and exported[0][-2] == "Total"
    assert sum(Decimal(line[-2]) for line in exported[1:]) == total  # exact, not rounded to cents
    month = response.context["tables"]["month"].rows
    assert [row["project"] for row in month] == [pages_project.name]


def test_quality_counts_finish_reasons_errors_and_scores_per_prompt_version(pages_project, owner):
    data = logged_in(owner).get(f"/p/{pages_project.slug}/quality/", {"range": "7d"}).context["data"]
    reasons = {row["finish_reason"]: row["count"] for row in data.reasons}
    assert reasons["stop"] == 1 and reasons["length"] == 1 and "" not in reasons
    assert {"RateLimitError": 1}.items() <= {row["error_type"]: row["count"] for row in data.error_types}.items()
    versions = {(row["prompt_name"], row["prompt_version"]): row for row in data.versions}
    assert versions[("support", "v1")]["scores"]["user-feedback"] == {"mean": 1.0, "count": 1}
    assert versions[("support", "v2")]["truncation_rate"] == 1.0
    assert [score.comment for score in data.comments][-1] == "Great answer about Zephyr"


def test_quality_summarises_each_score_name_with_its_comments(pages_project, owner):
    scores_write(project=pages_project, scores=[
        ScoreRecord(score_id="s3", name="user-feedback", data_type="boolean", value=0.0, trace_id="trace-ok",
                    timestamp=datetime.now(UTC) - timedelta(minutes=5)),
        ScoreRecord(score_id="s4", name="tone", data_type="categorical", string_value="polite", trace_id="trace-ok",
                    comment="fine", timestamp=datetime.now(UTC) - timedelta(minutes=4)),
    ])
    data = logged_in(owner).get(f"/p/{pages_project.slug}/quality/", {"range": "7d"}).context["data"]
    summary = {row["name"]: row for row in data.scores}
    assert (summary["user-feedback"]["count"], summary["user-feedback"]["mean"]) == (2, 0.5)
    assert summary["user-feedback"]["commented"] == 1  # s1 has a comment, s3 none
    tone = summary["tone"]
    assert (tone["count"], tone["commented"], tone["values"]) == (1, 1, [("polite", 1)])


@pytest.mark.parametrize("page", ["", "latency/", "cost/", "quality/"])
def test_a_project_without_calls_says_how_to_send_the_first_one(project, owner, page):
    body = logged_in(owner).get(f"/p/{project.slug}/{page}").content.decode()
    assert "Send your first call" in body and "/api/v1/events" in body
    assert 'data-chart=' not in body  # no empty axes


def test_a_range_without_calls_suggests_a_wider_one(pages_project, owner):
    body = logged_in(owner).get(f"/p/{pages_project.slug}/latency/", {"range": "1h", "model": "gpt-4o"}).content
    assert b"Look at the last 30 days without filters" in body
