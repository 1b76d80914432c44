"""The readiness scorecard: every item passes, warns and fails on the numbers it names, with
example calls to look at when it does not pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from observatory.budgets.services import budget_create
from observatory.calls.services import calls_write
from observatory.reliability.scorecard import ITEMS, Status, scorecard_get
from observatory.reliability.services import reliability_settings_update
from tests.records import record

NOW = datetime.now(UTC)
START = NOW - timedelta(hours=1)
# A call that does everything the default checklist asks for.
GOOD = {"max_tokens": 256, "timeout_ms": 30_000.0, "streamed": True, "content_filter": "passed",
        "prompt_name": "support-answer", "prompt_version": "3", "attempt": 1, "http_status": 200,
        "finish_reason": "stop", "feature": "chat"}


def write(project, count: int, **fields) -> list[str]:
    """`count` calls like GOOD with `fields` changed; returns their span ids."""
    records = [record(start_time=NOW - timedelta(minutes=30, seconds=-i), **{**GOOD, **fields}) for i in range(count)]
    calls_write(project=project, records=records)
    return [r.span_id for r in records]


def item(project, key: str):
    card = scorecard_get(project=project, start=START, end=NOW, now=NOW)
    (found,) = [item for item in card.items if item.key == key]
    return found


# (item, [(count, fields), ...] beyond 10 GOOD calls, expected status, text in the summary)
CASES = [
    ("max_tokens", [], "pass", "100% of 10 model calls set max_tokens (at least 99%)"),
    ("max_tokens", [(1, {"max_tokens": None})], "warn", "90.9% of 11 model calls"),
    ("max_tokens", [(5, {"max_tokens": None})], "fail", "66.7% of 15"),
    ("truncation", [], "pass", "0% of model calls stopped at max_tokens"),
    ("truncation", [(30, {}), (1, {"finish_reason": "length"})], "warn", "2.4% of model calls"),
    ("truncation", [(2, {"finish_reason": "length"})], "fail", "16.7%"),
    ("streaming", [(5, {"feature": "batch", "latency_ms": 9000, "streamed": True})], "pass", "1 feature(s)"),
    ("streaming", [(8, {"feature": "report", "latency_ms": 5000.0}),
                   (2, {"feature": "report", "latency_ms": 5000.0, "streamed": False})], "warn",
     "the least streamed, report, streams 80% of its calls (at least 90%)"),
    ("streaming", [(5, {"feature": "report", "latency_ms": 5000.0, "streamed": None})], "fail", "streams 0%"),
    ("timeouts", [], "pass", "had a timeout configured"),
    ("timeouts", [(1, {"timeout_ms": None})], "warn", "90.9%"),
    ("timeouts", [(10, {"timeout_ms": None})], "fail", "50%"),
    ("retries", [], "pass", "No call went past 3 attempts; 0% of calls are retries"),
    ("retries", [(2, {"attempt": 2})], "warn", "16.7% of calls are retries (at most 10%)"),
    ("retries", [(1, {"attempt": 4})], "fail", "1 call(s) went past 3 attempts"),
    ("fallbacks", [], "warn", "the fallback path is untested"),
    ("fallbacks", [(2, {"fallback_from_model": "gpt-4o"})], "pass", "2 fallback call(s), 100% succeeding"),
    ("fallbacks", [(1, {"fallback_from_model": "gpt-4o"}),
                   (1, {"fallback_from_model": "gpt-4o", "status": "error"})], "fail", "50% succeeding"),
    ("latency", [], "pass", "P99 latency 8"),
    ("latency", [(90, {}), (10, {"latency_ms": 15_000.0})], "warn", "(at most 10,000 ms)"),
    ("latency", [(90, {}), (10, {"latency_ms": 25_000.0})], "fail", "P99 latency 2"),
    ("errors", [], "pass", "0% of model calls failed (0; at most 2%)"),
    ("errors", [(30, {}), (1, {"status": "error"})], "warn", "2.4% of model calls failed (1;"),
    ("errors", [(1, {"status": "error"})], "fail", "9.1%"),
    ("prompt_versions", [], "pass", "100% of model calls name their prompt"),
    ("prompt_versions", [(1, {"prompt_version": None})], "warn", "90.9%"),
    ("prompt_versions", [(10, {"prompt_name": None, "prompt_version": None})], "fail", "50%"),
    ("content_filter", [], "pass", "went through a content filter"),
    ("content_filter", [(1, {"content_filter": None})], "warn", "90.9%"),
    ("content_filter", [(10, {"content_filter": None})], "fail", "50%"),
]


@pytest.mark.parametrize("key, extra, status, summary", CASES,
                         ids=[f"{case[0]}-{case[2]}" for case in CASES])
def test_each_item_passes_warns_and_fails(project, key, extra, status, summary):
    write(project, 10)
    offenders = []
    for count, fields in extra:
        ids = write(project, count, **fields)
        if any(fields.get(name) != GOOD.get(name) for name in fields if name != "feature"):
            offenders += ids
    found = item(project, key)
    assert (found.status, summary in found.summary) == (Status(status), True), found.summary
    if found.status == Status.PASS:
        assert found.examples == []
    elif key != "fallbacks" or offenders:
        assert found.examples and {example.span_id for example in found.examples} <= set(offenders)


@pytest.mark.parametrize("budget, status", [
    (None, "fail"),
    ({"hard_cap": False}, "warn"),
    ({"hard_cap": True}, "pass"),
])
def test_a_budget_with_thresholds_and_a_hard_cap(project, budget, status):
    write(project, 3)
    if budget is not None:
        budget_create(project=project, name="Monthly", amount=Decimal(100), **budget)
    assert item(project, "budget").status == Status(status)


def test_thresholds_are_the_projects_own(project, owner):
    write(project, 9)
    write(project, 1, max_tokens=None)
    assert item(project, "max_tokens").status == Status.WARN
    reliability_settings_update(project=project, actor=owner, min_max_tokens_share=Decimal(90))
    assert item(project, "max_tokens").status == Status.PASS


def test_a_window_without_calls_has_no_items_and_every_item_is_listed_otherwise(project):
    assert scorecard_get(project=project, start=START, end=NOW, now=NOW).items == []
    write(project, 2)
    card = scorecard_get(project=project, start=START, end=NOW, now=NOW)
    assert len(card.items) == len(ITEMS) == 11 and card.calls == 2
    assert card.status == Status.FAIL and card.counts == {"pass": 9, "warn": 1, "fail": 1}  # no fallback, no budget
