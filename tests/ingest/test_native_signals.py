"""Gateway signals through the native API: stored as columns, derived where one implies another,
and every contradiction refused with the field named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from observatory.calls.models import Call, CallContent
from observatory.tenancy.models import RedactionMode
from tests.ingest.conftest import event
from tests.ingest.test_native_bad_input import rejected

SIGNALS = {
    "cache_hit": False, "attempt": 3, "retry_of": "span-2", "fallback_from_provider": "azure",
    "fallback_from_model": "gpt-4o", "http_status": 200, "timeout_ms": 30000, "max_tokens": 512,
    "streamed": True, "content_filter": "passed",
}


def stored(ingest, **fields) -> Call:
    response = ingest.post(event(id="s1", **fields))
    assert response.status_code == 200, response.content
    return Call.objects.get(span_id="s1")


def test_every_signal_is_stored_as_sent(ingest):
    call = stored(ingest, **SIGNALS)
    assert {name: getattr(call, name) for name in SIGNALS} == SIGNALS
    assert call.cost_source == "catalog" and call.cost > 0 and call.cache_saved_cost is None


def test_a_cache_hit_costs_nothing_and_saves_what_the_call_would_have_cost(ingest):
    call = stored(ingest, cache_kind="semantic")
    assert (call.cache_hit, call.cache_kind, call.cost, call.cost_source) == (True, "semantic", 0, "cache")
    Call.objects.all().delete()
    priced = stored(ingest)
    assert call.cache_saved_cost == priced.cost > 0


def test_a_cache_hit_keeps_the_clients_figures(ingest):
    call = stored(ingest, cache_hit=True, cost=0.0001, cache_saved_cost=0.02)
    assert (call.cost, call.cost_source, call.cache_saved_cost) == (Decimal("0.0001"), "client", Decimal("0.02"))
    assert call.cache_kind is None  # a hit of an unnamed kind


def test_a_filtered_finish_means_a_flagged_output_and_a_retry_is_at_least_the_second_attempt(ingest):
    call = stored(ingest, finish_reason="content_filter", retry_of="first-try")
    assert (call.content_filter, call.attempt) == ("output_flagged", 2)


def test_identical_prompts_hash_alike_even_when_content_is_dropped(ingest, project):
    project.redaction_mode = RedactionMode.DROP
    project.save()
    prompt = [{"role": "user", "content": "What is my balance?"}]
    ingest.post({"events": [event(id="a", input=prompt), event(id="b", input=prompt),
                            event(id="c", input=prompt + [{"role": "user", "content": "again"}]),
                            event(id="d", kind="span", input=prompt)]})
    hashes = dict(Call.objects.values_list("span_id", "input_hash"))
    assert hashes["a"] == hashes["b"] is not None and hashes["c"] not in (None, hashes["a"])
    assert hashes["d"] is None  # only model calls are compared
    assert not CallContent.objects.exists()  # the prompts themselves were not kept


@pytest.mark.parametrize("fields, field, message", [
    ({"cache_kind": "fuzzy"}, "cache_kind", "Invalid enum value 'fuzzy' (one of: exact, semantic)"),
    ({"cache_hit": False, "cache_kind": "exact"}, "cache_kind", "cache_hit is false"),
    ({"cache_saved_cost": 0.1}, "cache_saved_cost", "only meaningful for a cache hit"),
    ({"cache_hit": True, "cache_saved_cost": -1}, "cache_saved_cost", "must not be negative"),
    ({"cache_hit": True, "cache_saved_cost": 1e9}, "cache_saved_cost", "not plausible"),
    ({"attempt": 0}, "attempt", ">= 1"),
    ({"attempt": 101}, "attempt", "<= 100"),
    ({"attempt": 1, "retry_of": "other"}, "attempt", "says this call is a retry"),
    ({"retry_of": "s1"}, "retry_of", "names the call itself"),
    ({"http_status": 99}, "http_status", ">= 100"),
    ({"http_status": 600}, "http_status", "<= 599"),
    ({"max_tokens": 0}, "max_tokens", ">= 1"),
    ({"timeout_ms": -5}, "timeout_ms", ">= 0"),
    ({"streamed": "yes"}, "streamed", "Expected `bool | null`"),
    ({"content_filter": "blocked"}, "content_filter", "(one of: passed, input_blocked, output_flagged)"),
    ({"fallback_from_provider": "openai", "fallback_from_model": "gpt-4o-mini"}, "fallback_from_model",
     "a fallback goes elsewhere"),
])
def test_contradictory_or_impossible_signals_are_refused(ingest, fields, field, message):
    assert message in rejected(ingest.post(event(id="s1", **fields)), field)
