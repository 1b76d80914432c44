import json
import random
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from observatory.calls.models import Call, Trace
from observatory.demo.traffic import _TraceFactory, demo_traffic_generate
from observatory.metrics.selectors import metrics_query
from observatory.metrics.services import rollups_compute
from observatory.pricing.catalog import catalog_cost
from observatory.pricing.usage import TokenUsage

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@pytest.fixture
def demo(project):
    stats = demo_traffic_generate(project=project, calls=6000, days=28, seed=11, now=NOW)
    return stats, list(Call.objects.filter(project=project))


def test_demo_writes_about_the_requested_number_of_calls_through_the_write_path(project, demo):
    stats, calls = demo
    assert 5400 <= stats.calls <= 6600 and stats.calls == len(calls)
    assert Trace.objects.filter(project=project).count() == stats.traces
    assert all(NOW - timedelta(days=28) <= call.start_time <= NOW + timedelta(minutes=2) for call in calls)


def test_demo_has_several_providers_models_features_and_users(demo):
    _, calls = demo
    generations = [call for call in calls if call.kind == "generation"]
    assert {call.provider for call in generations} >= {"openai", "anthropic", "google", "vllm"}
    assert len({call.model for call in generations}) >= 6
    assert len({call.feature for call in calls}) == 5
    users = Counter(call.user_id for call in calls)
    assert len(users) > 100
    # A few heavy users: the top 5% of users make a large share of the calls.
    top = sum(count for _, count in users.most_common(len(users) // 20))
    assert top > 0.2 * len(calls)


def test_demo_traces_are_nested_workflows(demo):
    _, calls = demo
    by_trace: dict[str, list[Call]] = {}
    for call in calls:
        by_trace.setdefault(call.trace_id, []).append(call)
    depths = []
    for spans in by_trace.values():
        roots = [span for span in spans if span.parent_span_id is None]
        assert len(roots) == 1 and roots[0].kind == "chain"
        ids = {span.span_id for span in spans}
        assert all(span.parent_span_id in ids for span in spans if span.parent_span_id)
        parents = {span.span_id: span.parent_span_id for span in spans}
        for span in spans:
            depth, node = 0, span.span_id
            while parents[node]:
                depth, node = depth + 1, parents[node]
            depths.append(depth)
    assert max(depths) == 2  # workflow -> retrieval -> embedding
    kinds = Counter(call.kind for call in calls)
    assert {"chain", "retriever", "embedding", "generation", "tool"} <= set(kinds)


def test_demo_prices_match_the_catalogue_and_some_calls_are_unpriced(demo):
    _, calls = demo
    priced = [call for call in calls if call.cost_source == "catalog"]
    unpriced = [call for call in calls if call.cost_source == "unknown"]
    assert priced and unpriced and all(call.cost is None for call in unpriced)
    assert {call.model for call in unpriced} == {"llama-3.1-8b-instruct"}
    for call in priced[:50]:
        usage = TokenUsage(input_tokens=call.input_tokens, cached_input_tokens=call.cached_input_tokens,
                           output_tokens=call.output_tokens)
        expected = catalog_cost(model=call.model, provider=call.provider, at=call.start_time, usage=usage)
        assert call.cost == expected.quantize(call.cost)


def test_demo_latency_is_heavy_tailed_with_errors_truncations_ttft_and_cache(demo):
    _, calls = demo
    generations = [call for call in calls if call.kind == "generation"]
    latencies = sorted(call.latency_ms for call in generations)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    assert p99 > 4 * p50
    error_rate = sum(call.status == "error" for call in generations) / len(generations)
    assert 0.005 < error_rate < 0.05
    assert all(call.error_type and call.error_message for call in generations if call.status == "error")
    assert 0.01 < sum(call.finish_reason == "length" for call in generations) / len(generations) < 0.15
    streamed = [call for call in generations if call.time_to_first_token_ms is not None]
    assert 0.5 < len(streamed) / len(generations) < 0.9
    assert all(call.time_to_first_token_ms < call.latency_ms for call in streamed)
    assert any(call.cached_input_tokens > 0 for call in generations)
    assert any(call.reasoning_tokens > 0 for call in generations)
    assert {call.prompt_version for call in generations if call.feature == "support-chat"} == {"v3", "v4"}


def test_demo_follows_a_weekday_pattern(demo):
    _, calls = demo
    per_day = Counter(call.start_time.date() for call in calls)
    full_days = [day for day in per_day if NOW.date() - timedelta(days=27) <= day < NOW.date()]
    weekday = statistics.mean(per_day[day] for day in full_days if day.weekday() < 5)
    weekend = statistics.mean(per_day[day] for day in full_days if day.weekday() >= 5)
    assert weekday > 1.8 * weekend


@pytest.mark.django_db(transaction=True)
def test_demo_traffic_command_in_parallel_prints_json_and_rejects_bad_arguments(project):
    out = StringIO()
    call_command("demo_traffic", "--project", project.slug, "--calls", "3000", "--days", "2", "--seed", "3",
                 "--workers", "2", stdout=out)
    result = json.loads(out.getvalue())
    assert result["project"] == project.slug and result["calls"] == Call.objects.count()
    assert 2700 <= result["calls"] <= 3300
    assert result["traces"] == Trace.objects.count()
    with pytest.raises(CommandError, match="No project with slug 'nope'"):
        call_command("demo_traffic", "--project", "nope")
    with pytest.raises(CommandError, match="--calls must be at least 1"):
        call_command("demo_traffic", "--project", project.slug, "--calls", "0")


def test_demo_model_calls_carry_limits_streaming_and_filter_checks(demo):
    _, calls = demo
    generations = [call for call in calls if call.kind == "generation"]
    assert 0.9 < sum(call.max_tokens is not None for call in generations) / len(generations) < 1
    assert 0.9 < sum(call.timeout_ms is not None for call in generations) / len(generations) < 1
    streamed = Counter(call.feature for call in generations if call.streamed)
    assert streamed["support-chat"] > 0 and streamed["classify-intent"] == 0  # a label needs no stream
    assert all(call.streamed is not None for call in generations)
    outcomes = Counter(call.content_filter for call in generations)
    assert outcomes["passed"] > 0.5 * len(generations)
    assert 0 < outcomes["input_blocked"] < 0.01 * len(generations)
    assert 0 < outcomes["output_flagged"] < 0.01 * len(generations)
    assert all(call.finish_reason == "content_filter"
               for call in generations if call.content_filter == "output_flagged")
    assert all(call.status == "error" and call.output_tokens == 0
               for call in generations if call.content_filter == "input_blocked")


def test_demo_cache_hits_cost_nothing_and_save_the_price(demo):
    _, calls = demo
    hits = [call for call in calls if call.cache_hit]
    kinds = Counter(call.cache_kind for call in hits)
    assert kinds["exact"] > 0 and kinds["semantic"] > 0
    generations = sum(call.kind == "generation" for call in calls)
    assert 0.02 < len(hits) / generations < 0.15
    assert {call.feature for call in hits} <= {"support-chat", "search-answer", "classify-intent"}
    assert all(call.cost == 0 and call.cost_source == "cache" for call in hits)
    assert all(call.cache_saved_cost > 0 for call in hits if call.model != "llama-3.1-8b-instruct")
    assert statistics.median(call.latency_ms for call in hits) < 100


def test_demo_failed_calls_are_retried_or_fall_back(demo):
    _, calls = demo
    by_span = {(call.trace_id, call.span_id): call for call in calls}
    statuses = Counter(call.http_status for call in calls if call.kind == "generation")
    assert statuses[200] > 0 and statuses[429] > 0 and statuses[500] + statuses[503] > 0
    retries = [call for call in calls if call.retry_of]
    assert retries
    for retry in retries:
        failed = by_span[(retry.trace_id, retry.retry_of)]
        assert failed.status == "error" and failed.http_status != 400  # a bad request is not worth a retry
        assert retry.attempt == failed.attempt + 1 <= 3 and retry.model == failed.model
        assert retry.start_time >= failed.start_time + timedelta(milliseconds=failed.latency_ms)
    fallbacks = [call for call in calls if call.fallback_from_model]
    assert fallbacks
    assert all(call.fallback_from_provider != call.provider for call in fallbacks)
    assert sum(call.status == "ok" for call in fallbacks) > 0.8 * len(fallbacks)
    timeouts = [call for call in calls if call.error_type == "APITimeoutError"]
    assert timeouts and all(call.http_status is None for call in timeouts)
    assert all(call.latency_ms == call.timeout_ms for call in timeouts if call.timeout_ms)


def test_demo_loops_repeat_one_prompt_and_are_flagged(project, demo):
    stats, calls = demo
    flagged = list(Trace.objects.filter(project=project, loop_flagged_at__isnull=False))
    assert stats.loops == len(flagged) >= 2
    assert all(trace.repeated_prompts >= 12 and "repeated_prompt" in trace.loop_reasons for trace in flagged)
    # The last one is recent, so the default week on the Reliability page shows it.
    assert max(trace.loop_flagged_at for trace in flagged) > NOW - timedelta(hours=1)
    looping = {trace.trace_id for trace in flagged}
    hashes = Counter(call.input_hash for call in calls if call.trace_id in looping and call.kind == "generation")
    assert len(hashes) == len(looping)  # one prompt per loop, sent at every step


def test_demo_signals_are_the_same_for_the_same_seed():
    first, last = NOW - timedelta(days=1), NOW
    factories = [_TraceFactory(random.Random(5), users=50, content_rate=0.0, first=first, last=last) for _ in (1, 2)]
    runs = [[factory.trace(first + timedelta(minutes=i)) for i in range(300)] + [factory.loop_trace(first)]
            for factory in factories]
    assert runs[0] == runs[1]
    other = _TraceFactory(random.Random(6), users=50, content_rate=0.0, first=first, last=last)
    assert [other.trace(first + timedelta(minutes=i)) for i in range(300)] != runs[0][:300]


def test_demo_rollups_hold_every_safety_net(project, demo):
    rollups_compute(project_ids=[project.pk])
    measures = ["cache_hits", "cache_saved_cost", "retries", "fallbacks", "rate_limited", "server_errors", "timeouts",
                "input_blocked", "output_flagged", "max_tokens_share", "timeout_set_share"]
    (row,) = metrics_query(project=project, start=NOW - timedelta(days=28), end=NOW + timedelta(minutes=5),
                           metrics=measures, now=NOW).rows
    assert all(row[name] > 0 for name in measures), row
    assert Decimal(row["cache_saved_cost"]) > 0

