"""What record(), traces, spans and the observe decorator store, through the live app."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from observatory_sdk import Observatory

from observatory.calls.models import Call, CallContent, Trace
from tests.sdk.conftest import a_call


@dataclasses.dataclass
class Retrieved:
    document: str
    score: float


def test_record_stores_every_field_and_converts_python_values(observatory, project):
    start = datetime.now(UTC) - timedelta(minutes=3)
    event_id = observatory.record(
        name="summarise", start_time=start, end_time=start + timedelta(milliseconds=1250), provider="openai",
        model="gpt-4o", input_tokens=900, cached_input_tokens=100, output_tokens=80, cost=Decimal("0.0123"),
        finish_reason="stop", user_id="u-1", session_id="s-1", feature="digest", prompt_name="digest",
        prompt_version=2, tags=("nightly", "eu"), metadata={"score": float("nan"), "hit": Retrieved("a.md", 0.9)},
        input=[{"role": "user", "content": "Summarise this"}], output="A summary.",
    )
    assert observatory.flush(timeout=30)

    call = Call.objects.get(project=project)
    assert call.span_id == call.trace_id == event_id
    assert call.start_time == start and call.latency_ms == pytest.approx(1250)
    assert (call.cost, call.cost_source) == (Decimal("0.0123"), "client")
    assert (call.cached_input_tokens, call.prompt_version, call.tags) == (100, "2", ["nightly", "eu"])
    assert call.metadata == {"score": None, "hit": {"document": "a.md", "score": 0.9}}
    content = CallContent.objects.get(call_id=call.id)
    assert (content.input, content.output) == ([{"role": "user", "content": "Summarise this"}], "A summary.")


def test_environment_and_release_are_set_on_every_event(make_observatory, project):
    client = make_observatory(environment="staging", release="2.3.1")
    client.record(name="one", **a_call())
    client.event("cache-hit")
    assert client.flush(timeout=30)

    assert set(Call.objects.filter(project=project).values_list("kind", "environment", "release")) == {
        ("generation", "staging", "2.3.1"), ("event", "staging", "2.3.1")}


def test_a_trace_nests_its_spans_and_hands_down_its_attributes(observatory, project):
    with observatory.trace("answer", kind="agent", user_id="u-9", feature="support", tags=["beta"]) as root:
        with observatory.span("search", kind="retriever") as search:
            search.update(output=["doc-1", "doc-2"])
        generation_id = observatory.record(name="reply", **a_call())
        observatory.event("feedback", metadata={"thumbs": "up"})
    assert observatory.flush(timeout=30)

    calls = {call.name: call for call in Call.objects.filter(project=project)}
    assert set(calls) == {"answer", "search", "reply", "feedback"}
    assert {call.trace_id for call in calls.values()} == {root.trace_id}
    assert calls["answer"].parent_span_id is None and calls["answer"].kind == "agent"
    assert {name: calls[name].parent_span_id for name in ("search", "reply", "feedback")} == dict.fromkeys(
        ("search", "reply", "feedback"), root.span_id)
    assert calls["reply"].span_id == generation_id
    assert {call.user_id for call in calls.values()} == {"u-9"}
    assert {call.feature for call in calls.values()} == {"support"}
    assert calls["search"].tags == ["beta"]
    trace = Trace.objects.get(project=project, trace_id=root.trace_id)
    assert (trace.name, trace.span_count, trace.model_call_count) == ("answer", 4, 1)


def test_a_span_that_raises_is_an_error_and_the_exception_goes_on(observatory, project):
    with pytest.raises(KeyError):
        with observatory.trace("lookup"):
            raise KeyError("customer-42")
    assert observatory.flush(timeout=30)

    call = Call.objects.get(project=project)
    assert (call.status, call.error_type, call.error_message) == ("error", "KeyError", "'customer-42'")


def test_the_observe_decorator_records_sync_and_async_functions(observatory, project):
    @observatory.observe(kind="tool", capture_io=True)
    def convert(amount: float, currency: str = "EUR") -> str:
        return f"{amount} {currency}"

    @observatory.observe
    async def plan(question: str) -> str:
        return convert(3.5, currency="USD")

    assert asyncio.run(plan("how much?")) == "3.5 USD"
    assert observatory.flush(timeout=30)

    calls = {call.name: call for call in Call.objects.filter(project=project)}
    outer = calls["test_the_observe_decorator_records_sync_and_async_functions.<locals>.plan"]
    inner = calls["test_the_observe_decorator_records_sync_and_async_functions.<locals>.convert"]
    assert (inner.kind, inner.parent_span_id, inner.trace_id) == ("tool", outer.span_id, outer.trace_id)
    content = CallContent.objects.get(call_id=inner.id)
    assert (content.input, content.output) == ({"amount": 3.5, "currency": "USD"}, "3.5 USD")
    assert not CallContent.objects.filter(call_id=outer.id).exists()


def test_concurrent_tasks_each_join_the_trace_they_were_started_in(observatory, project):
    async def handle(request: str) -> str:
        with observatory.trace(f"request-{request}", user_id=request) as trace:
            await asyncio.sleep(0)
            observatory.record(name=f"call-{request}", **a_call())
        return trace.trace_id

    async def serve() -> list[str]:
        return await asyncio.gather(*(handle(str(n)) for n in range(5)))

    trace_ids = asyncio.run(serve())
    assert observatory.flush(timeout=30)

    for n, trace_id in enumerate(trace_ids):
        call = Call.objects.get(project=project, name=f"call-{n}")
        assert (call.trace_id, call.user_id) == (trace_id, str(n))


def test_recording_from_many_threads_loses_nothing(make_observatory, project):
    client = make_observatory(batch_size=25, flush_interval=0.01)

    def work(thread: int) -> None:
        for i in range(50):
            client.record(name=f"t{thread}-{i}", **a_call())

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(timeout=60)

    assert Call.objects.filter(project=project).count() == 400
    assert client.stats().accepted == 400


def test_content_capture_can_be_switched_off_for_the_whole_client(make_observatory, project):
    client = make_observatory(capture_content=False)
    client.record(name="private", input="my card is 4111 1111 1111 1111", output="noted", **a_call())
    assert client.flush(timeout=30)

    call = Call.objects.get(project=project, name="private")
    assert not CallContent.objects.filter(call_id=call.id).exists()


def test_without_url_and_key_the_client_is_disabled_and_records_nothing(monkeypatch):
    monkeypatch.delenv("OBSERVATORY_URL", raising=False)
    monkeypatch.delenv("OBSERVATORY_SECRET_KEY", raising=False)
    client = Observatory()

    assert not client.enabled
    assert client.record(name="ignored") and client.flush(timeout=1)
    assert client.stats().queued == 0 and client._worker is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"base_url": "localhost:8000"}, "http:// or https://"),
        ({"batch_size": 20_000}, "batch_size"),
        ({"max_queue_size": 0}, "max_queue_size"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_settings_mistakes_are_refused_at_construction(settings, message):
    with pytest.raises(ValueError, match=message):
        Observatory(**{"base_url": "http://127.0.0.1:8000", "secret_key": "sk-obs-x", **settings})
