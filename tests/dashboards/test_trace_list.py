"""The trace list: every filter, keyset pages, and the indexes its selective filters need."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from observatory.calls.models import Call
from observatory.calls.selectors import CallFilters, calls_list
from observatory.calls.services import calls_write
from tests.dashboards.conftest import logged_in
from tests.records import record


@pytest.fixture
def many(project):
    """60 calls, one a minute, each trace a root chain span and a generation."""
    records, now = [], datetime.now(UTC)
    for i in range(30):
        start = now - timedelta(minutes=2 * i + 1)
        common = {"trace_id": f"t{i}", "user_id": f"u{i % 3}", "session_id": f"s{i % 5}", "feature": "chat"}
        records.append(record(**common, span_id="root", kind="chain", name=f"workflow {i}", model=None,
                              provider=None, start_time=start, latency_ms=3000.0))
        records.append(record(**common, span_id="gen", parent_span_id="root", name=f"answer-{i}",
                              model="gpt-4o" if i % 2 else "gpt-4o-mini", start_time=start + timedelta(seconds=1),
                              latency_ms=100.0 * (i + 1), cost=Decimal("0.001") * (i + 1),
                              status="error" if i % 10 == 0 else "ok", error_type="Timeout" if i % 10 == 0 else None,
                              finish_reason=None if i % 10 == 0 else ("length" if i % 7 == 0 else "stop")))
    calls_write(project=project, records=records)
    return project


def names(client, project, **params) -> list[str]:
    response = client.get(f"/p/{project.slug}/traces/", {"range": "24h", **params})
    assert response.status_code == 200
    return [row["name"] for row in response.context["tables"]["calls"].rows]


@pytest.mark.parametrize("params, expected", [
    ({}, {f"answer-{i}" for i in range(30)}),
    ({"model": "gpt-4o"}, {f"answer-{i}" for i in range(30) if i % 2}),
    ({"status": "error"}, {"answer-0", "answer-10", "answer-20"}),
    ({"error_type": "Timeout"}, {"answer-0", "answer-10", "answer-20"}),
    ({"finish_reason": "length"}, {"answer-7", "answer-14", "answer-21", "answer-28"}),
    ({"user_id": "u1"}, {f"answer-{i}" for i in range(30) if i % 3 == 1}),
    ({"session_id": "s2"}, {f"answer-{i}" for i in range(30) if i % 5 == 2}),
    ({"cost_min": "0.010", "cost_max": "0.012"}, {"answer-9", "answer-10", "answer-11"}),
    ({"latency_min": "2500", "latency_max": "2700"}, {"answer-24", "answer-25", "answer-26"}),
    ({"q": "ANSWER-1"}, {"answer-1"} | {f"answer-{i}" for i in range(10, 20)}),
    ({"show": "roots"}, {f"workflow {i}" for i in range(30)}),
    ({"show": "all", "q": "29"}, {"workflow 29", "answer-29"}),
    ({"show": "all", "kind": "chain", "user_id": "u0", "q": "workflow 2"}, {"workflow 21", "workflow 24",
                                                                            "workflow 27"}),
])
def test_filters(many, owner, params, expected):
    assert set(names(logged_in(owner), many, **params)) == expected


def test_keyset_pages_cover_every_call_once_newest_first(many, owner):
    client = logged_in(owner)
    seen, cursor = [], None
    while True:
        response = client.get(f"/p/{many.slug}/traces/", {"range": "24h", **({"cursor": cursor} if cursor else {})})
        seen += [row["start_time"] for row in response.context["tables"]["calls"].rows]
        cursor = response.context["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 30 and seen == sorted(seen, reverse=True)


def test_a_broken_cursor_or_bad_filter_is_reported_not_a_500(many, owner):
    client = logged_in(owner)
    response = client.get(f"/p/{many.slug}/traces/", {"cursor": "garbage", "cost_min": "cheap", "range": "24h"})
    assert response.status_code == 200
    assert response.context["form"].errors["cost_min"]
    assert len(response.context["tables"]["calls"].rows) == 30  # the broken parts are left out


def test_the_time_range_bounds_the_list(many, owner):
    assert len(names(logged_in(owner), many, range="1h")) == 30  # all within the hour: 2-minute spacing
    days_ago = [(datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%d") for days in (3, 2)]
    assert names(logged_in(owner), many, range="custom", start=days_ago[0], end=days_ago[1]) == []


def test_rows_link_to_their_trace_user_and_session(many, owner):
    row = logged_in(owner).get(f"/p/{many.slug}/traces/", {"range": "24h"}).context["tables"]["calls"].rows[0]
    assert row["name_url"].startswith(f"/p/{many.slug}/trace/t0#span-")
    assert "user_id=u0" in row["user_id_url"] and "session_id=s0" in row["session_id_url"]


def test_a_trace_page_has_its_waterfall_and_links_to_the_users_other_calls(many, owner):
    response = logged_in(owner).get(f"/p/{many.slug}/trace/t3")
    rows = [span.row for span in response.context["view"].spans]
    assert [(row.call.span_id, row.depth) for row in rows] == [("root", 0), ("gen", 1)]
    assert rows[0].x == 0 and rows[0].width == 1000 and 0 < rows[1].x < 1000
    assert "user_id=u0" in response.context["links"]["user"] and "session_id=s3" in response.context["links"]["session"]


EXPLAINED = {
    "user_id": ("calls_call_p", "user_time"),
    "session_id": ("calls_call_p", "session_time"),
    "status": ("calls_call_p", "error_rows"),
}


@pytest.mark.parametrize("name, value", [("user_id", "u1"), ("session_id", "s1"), ("status", "error")])
def test_selective_filters_can_walk_their_partial_index(many, name, value):
    """On 10M calls a rare user must not mean reading the whole window: the partial index
    has to match the query the list runs (checked with sequential scans priced out, since
    this table is tiny)."""
    query = Call.objects.filter(project=many, start_time__gte=datetime.now(UTC) - timedelta(days=1), **{name: value}) \
        .order_by("-start_time", "-id")[:51]
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert EXPLAINED[name][1] in plan, plan


def test_calls_list_keeps_its_api_defaults(many):
    page, _ = calls_list(project=many, filters=CallFilters(), limit=100)
    assert len(page) == 60  # every kind, roots included, when no filter asks otherwise


def test_a_sparse_search_reads_a_bounded_stretch_per_page_and_skips_nothing(project, owner, monkeypatch):
    """Text search over a long range: each page stops at the scan budget and the next page
    carries on from there, until every match has been listed once."""
    import dashboards.selectors.traces as traces

    now = datetime.now(UTC)
    calls_write(project=project, records=[
        record(trace_id=f"h{hour}", span_id="gen", name="needle" if hour in (2, 9, 10, 17) else "hay",
               start_time=now - timedelta(hours=hour, minutes=5)) for hour in range(20)])
    monkeypatch.setattr(traces, "SCAN_BUDGET", 3)
    client, found, cursor, pages = logged_in(owner), [], None, 0
    while True:
        response = client.get(f"/p/{project.slug}/traces/", {"range": "7d", "q": "needle",
                                                             **({"cursor": cursor} if cursor else {})})
        rows = response.context["tables"]["calls"].rows
        assert len(rows) <= 2  # never more than the stretch the budget allows (3 calls, 1 per hour)
        found += [row["start_time"] for row in rows]
        pages += 1
        cursor = response.context["next_cursor"]
        if cursor is None:
            break
        assert response.context["searched_back_to"] is not None
    assert len(found) == 4 and found == sorted(found, reverse=True) and pages >= 6
    # With a user (an index walks only that user's calls) there is no budget.
    assert logged_in(owner).get(f"/p/{project.slug}/traces/", {"range": "7d", "q": "needle", "user_id": "nobody"}
                                ).context["searched_back_to"] is None
