"""The dashboards in a real browser: every page draws its charts with no console error (the
CSP included), filters and ranges live in the URL, a trace opens from the list, tables export."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest

from observatory.budgets.services import budget_create, budget_evaluate
from observatory.tenancy.roles import Role

pytestmark = pytest.mark.browser

PAGES = {
    "overview": ("", {"calls", "spend", "latency"}),
    "traces": ("traces/", set()),
    "latency": ("latency/", {"latency", "ttft", "by_group", "throughput"}),
    "cost": ("cost/", {"spend", "burn", "per_call"}),
    "quality": ("quality/?range=7d", {"reasons", "rates", "versions_latency", "versions_scores"}),
    "finance": ("finance/", set()),
    "reliability": ("reliability/", {"cache", "savings", "retries", "rate_limits", "server_errors", "guards"}),
    "budgets": ("budgets/", set()),
    "alerts": ("alerts/", set()),
    "settings": ("settings/", set()),
}


def test_an_engineer_opens_every_page_and_every_chart_has_data(session_for, site):
    session = session_for(Role.ENGINEER)
    assert session.page.url.endswith(f"/p/{site['project'].slug}/")
    for name, (path, expected_charts) in PAGES.items():
        session.open(f"/p/{site['project'].slug}/{path}")
        session.screenshot(f"engineer-{name}")
        charts = session.charts()
        assert set(charts) == expected_charts, name
        assert all(points > 0 for points in charts.values()), (name, charts)
        assert session.page.locator("nav.tabs a[aria-current]").inner_text().lower() == name
    assert session.errors == [] and session.foreign == []


def test_filters_and_ranges_are_kept_in_the_url(session_for, site):
    session = session_for(Role.ENGINEER)
    session.open(f"/p/{site['project'].slug}/latency/")
    with session.page.expect_navigation():
        session.page.select_option("select[name=model]", "gpt-4o-mini")  # submits on change
    session.settle()
    with session.page.expect_navigation():
        session.page.select_option("select[name=range]", "7d")
    session.settle()
    query = parse_qs(urlparse(session.page.url).query)
    assert query == {"model": ["gpt-4o-mini"], "range": ["7d"]}  # empty fields stay out of the URL
    rows = session.page.locator("#table-by-model tbody tr")
    assert rows.count() == 1 and "gpt-4o-mini" in rows.first.inner_text()
    # Custom reveals its fields instead of submitting.
    session.page.select_option("select[name=range]", "custom")
    assert session.page.locator("[data-custom-range]").is_visible()
    session.screenshot("engineer-latency-filtered")
    # The same URL in a fresh tab shows the same view.
    shared = session_for(Role.ENGINEER)
    shared.open(urlparse(session.page.url).path + "?" + urlparse(session.page.url).query)
    assert shared.page.locator("select[name=model]").input_value() == "gpt-4o-mini"
    assert session.errors == [] and shared.errors == []


def test_a_trace_opens_from_the_filtered_list_with_its_waterfall_and_content(session_for, site):
    session = session_for(Role.ENGINEER)
    session.open(f"/p/{site['project'].slug}/traces/?range=7d")
    session.page.fill("input[name=q]", "support-chat")
    session.page.select_option("select[name=status]", "ok")
    with session.page.expect_navigation():
        session.page.click("text=Apply filters")
    session.settle()
    assert "q=support-chat" in session.page.url and "status=ok" in session.page.url
    names = session.page.locator("#table-calls tbody td:nth-child(2)").all_inner_texts()
    assert names and all("support-chat" in name for name in names)
    session.screenshot("engineer-traces-filtered")
    with session.page.expect_navigation():
        session.page.locator("#table-calls tbody a[href*='/trace/']").first.click()
    session.settle()
    assert session.page.locator(".waterfall .wf-row").count() >= 2
    assert session.page.locator(".wf-track rect").count() == session.page.locator(".wf-row").count()
    assert session.page.locator(".messages-list .role").first.inner_text().lower() in ("system", "user")
    session.screenshot("engineer-trace")
    with session.page.expect_navigation():
        session.page.click("dl.facts a[href*='user_id=']")
    session.settle()
    assert "user_id=" in session.page.url and session.page.locator("#table-calls tbody tr").count() > 0
    assert session.errors == []


def test_finance_exports_spend_and_never_sees_prompts(session_for, site):
    session = session_for(Role.FINANCE)
    session.open(f"/p/{site['project'].slug}/finance/")
    session.screenshot("finance-finance")
    with session.page.expect_download() as download:
        session.page.click("#table-daily-by-model >> text=Export CSV")
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert rows[0][0] == "Day (UTC)" and "Total" in rows[0] and len(rows) > 1
    session.open(f"/p/{site['project'].slug}/traces/?range=7d")
    with session.page.expect_navigation():
        session.page.locator("#table-calls tbody a[href*='/trace/']").first.click()
    session.settle()
    assert session.page.locator(".messages-list").count() == 0
    assert "hidden for your role (finance)" in session.page.locator(".hidden-content").inner_text()
    session.screenshot("finance-trace")
    assert session.errors == []


def test_an_api_key_is_shown_once_and_revoked_after_a_confirmation(session_for, site):
    session = session_for(Role.ENGINEER)
    session.open(f"/p/{site['project'].slug}/settings/")
    session.page.fill("#keys input[name=name]", "browser test")
    with session.page.expect_navigation():
        session.page.click("#keys >> text=Create key")
    secret = session.page.locator("[data-secret]").inner_text()
    assert secret.startswith("sk-obs-")
    session.screenshot("engineer-settings-new-key")
    session.open(f"/p/{site['project'].slug}/settings/")
    assert secret not in session.page.content()
    session.page.once("dialog", lambda dialog: dialog.accept())
    with session.page.expect_navigation():
        session.page.locator("#keys tr", has_text="browser test").locator("text=Revoke").click()
    assert "Revoked browser test" in session.page.locator(".messages").inner_text()
    assert session.errors == []


def test_reliability_shows_the_scorecard_and_a_flagged_loop_opens_with_its_reasons(session_for, site):
    session = session_for(Role.ENGINEER)
    session.open(f"/p/{site['project'].slug}/reliability/")
    items = session.page.locator("#scorecard li.check")
    assert items.count() == 11
    assert all(status in ("pass", "warn", "fail")
               for status in session.page.locator("#scorecard li.check > .badge").all_inner_texts())
    assert session.page.locator("#table-fallbacks tbody tr").count() > 0
    session.screenshot("engineer-reliability-scorecard")
    loops = session.page.locator("#table-loops tbody a[href*='/trace/']")
    assert loops.count() > 0
    with session.page.expect_navigation():
        loops.first.click()
    session.settle()
    assert "runaway loop" in session.page.locator("[data-loop]").inner_text()
    session.screenshot("engineer-trace-loop")
    # The limits are edited on the same page (bad values are covered by the page's own tests).
    session.open(f"/p/{site['project'].slug}/reliability/")
    session.page.fill("#thresholds input[name=loop_max_spans]", "321")
    with session.page.expect_navigation():
        session.page.click("#thresholds >> text=Save thresholds")
    assert "321" in session.page.locator(".messages").inner_text()
    assert session.errors == []


def test_finance_creates_a_budget_and_sees_its_burn(session_for, site):
    session = session_for(Role.FINANCE)
    session.open(f"/p/{site['project'].slug}/budgets/")
    assert "No budgets yet" in session.page.locator("#budgets").inner_text()
    session.screenshot("finance-budgets-empty")
    form = session.page.locator("#new form")
    form.locator("input[name=name]").fill("Support monthly")
    form.locator("input[name=amount]").fill("25")
    form.locator("input[name=thresholds]").fill("50, 80, 100")
    form.locator("input[name=recipients]").fill("finance@acme.test")
    with session.page.expect_navigation():
        form.locator("button[type=submit]").click()
    session.settle()
    assert "Created the budget" in session.page.locator(".messages").inner_text()
    row = session.page.locator("#budgets tbody tr", has_text="Support monthly")
    assert row.count() == 1
    cells = row.locator("td")
    assert cells.nth(1).inner_text() == "the whole project" and cells.nth(3).inner_text() == "$25.00"
    assert cells.nth(4).inner_text().startswith("$") and cells.nth(4).inner_text() != "$0.00"  # the demo traffic
    assert cells.nth(5).inner_text().strip().endswith("%")
    session.screenshot("finance-budgets")
    session.page.click("#budgets >> text=Edit")
    session.settle()
    assert session.page.locator("#edit input[name=name]").input_value() == "Support monthly"
    session.screenshot("finance-budgets-edit")
    assert session.errors == []


def test_an_engineer_creates_an_alert_rule_next_to_the_alert_history(session_for, site):
    # A budget the demo traffic has already spent, so the history has something to show.
    budget = budget_create(project=site["project"], name="Tiny daily", period="day", amount=Decimal("0.01"),
                           recipients=["finance@acme.test", "https://hooks.example.test/services/T0/B0/SECRET"])
    assert budget_evaluate(budget=budget).notifications
    session = session_for(Role.ENGINEER)
    session.open(f"/p/{site['project'].slug}/alerts/")
    assert "Tiny daily" in session.page.locator("#history tbody").inner_text()
    form = session.page.locator("#new form")
    form.locator("input[name=name]").fill("Errors above 5%")
    form.locator("select[name=kind]").select_option("error_rate")
    form.locator("input[name=threshold]").fill("5")
    with session.page.expect_navigation():
        form.locator("button[type=submit]").click()
    session.settle()
    assert "Created the alert rule" in session.page.locator(".messages").inner_text()
    assert session.page.locator("#rules tbody tr", has_text="Errors above 5%").count() == 1
    session.screenshot("engineer-alerts-created")
    assert session.errors == []
