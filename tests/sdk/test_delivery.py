"""How the client gets events to the server: batches, gzip, outages, retries, refusals."""

from __future__ import annotations

import logging
import re

import pytest

from observatory.calls.models import Call
from tests.sdk.conftest import a_call, wait_until


def stored_names(project) -> list[str]:
    return sorted(Call.objects.filter(project=project).values_list("name", flat=True))


def test_events_go_in_gzipped_batches_of_batch_size(make_observatory, gate, project):
    gate.open()
    client = make_observatory(base_url=gate.url, batch_size=10, flush_interval=3600)
    for i in range(25):
        client.record(name=f"call-{i:02}", **a_call())
    assert client.flush(timeout=30)

    assert [len(request.events()) for request in gate.requests] == [10, 10, 5]
    assert {request.headers["Content-Encoding"] for request in gate.requests} == {"gzip"}
    assert stored_names(project) == [f"call-{i:02}" for i in range(25)]
    assert client.stats().accepted == 25


def test_a_lone_event_is_sent_after_flush_interval_without_a_flush(make_observatory, project):
    client = make_observatory(batch_size=100, flush_interval=0.05)
    event_id = client.record(name="lonely", **a_call())
    wait_until(lambda: Call.objects.filter(project=project, span_id=event_id).exists(), what="the event is stored")


def test_requests_stay_under_max_request_bytes(make_observatory, gate, project):
    gate.open()
    client = make_observatory(base_url=gate.url, max_request_bytes=4096, gzip=False, flush_interval=3600)
    for i in range(6):
        client.record(name=f"long-{i}", **a_call(input="words " * 250))  # ~1.5 KB each
    assert client.flush(timeout=30)

    assert len(gate.requests) > 1
    assert all(len(request.body) <= 4096 for request in gate.requests)
    assert sum(len(request.events()) for request in gate.requests) == 6
    assert len(stored_names(project)) == 6


def test_events_recorded_during_an_outage_arrive_once_the_server_is_back(make_observatory, gate, project):
    client = make_observatory(base_url=gate.url, max_retries=None, flush_interval=0.01)
    for i in range(3):
        client.record(name=f"outage-{i}", **a_call())
    wait_until(lambda: client.stats().retries >= 2, what="connections are refused and retried")
    assert gate.requests == []  # nothing listened: every attempt was refused

    gate.open()
    assert client.flush(timeout=30)
    assert stored_names(project) == ["outage-0", "outage-1", "outage-2"]
    stats = client.stats()
    assert (stats.accepted, stats.failed, stats.dropped) == (3, 0, 0)


def test_a_full_queue_drops_the_oldest_events_and_counts_them(make_observatory, gate, project):
    client = make_observatory(base_url=gate.url, max_queue_size=5, batch_size=100, flush_interval=3600)
    for i in range(20):
        client.record(name=f"event-{i:02}", **a_call())
    stats = client.stats()
    assert (stats.dropped, stats.queued) == (15, 5)

    gate.open()
    assert client.flush(timeout=30)
    assert stored_names(project) == [f"event-{i:02}" for i in range(15, 20)]
    assert client.stats().dropped == 15


def test_a_batch_whose_reply_was_lost_is_sent_again_and_stored_once(make_observatory, gate, project):
    gate.open()
    gate.lose_next_reply()
    client = make_observatory(base_url=gate.url, flush_interval=3600)
    for i in range(3):
        client.record(name=f"once-{i}", **a_call())
    assert client.flush(timeout=30)

    first, retry = gate.requests
    assert first.events() == retry.events()
    assert stored_names(project) == ["once-0", "once-1", "once-2"]
    stats = client.stats()
    assert (stats.accepted, stats.duplicates, stats.retries) == (0, 3, 1)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_transient_statuses_are_retried(make_observatory, gate, project, status):
    gate.open()
    gate.fail_next(status, times=2)
    client = make_observatory(base_url=gate.url, flush_interval=3600)
    client.record(name="persistent", **a_call())
    assert client.flush(timeout=30)

    assert len(gate.requests) == 3
    assert stored_names(project) == ["persistent"]
    assert (client.stats().retries, client.stats().accepted) == (2, 1)


def test_retry_after_sets_the_least_wait(make_observatory, gate, project, caplog):
    caplog.set_level(logging.INFO, logger="observatory_sdk")
    gate.open()
    gate.fail_next(503, retry_after="1")
    client = make_observatory(base_url=gate.url, flush_interval=3600)
    client.record(name="patient", **a_call())
    assert client.flush(timeout=30)

    retries = [record.getMessage() for record in caplog.records if "retry 1 in" in record.getMessage()]
    assert len(retries) == 1 and "HTTP 503" in retries[0]
    assert float(re.search(r"retry 1 in ([\d.]+) s", retries[0]).group(1)) >= 1.0
    assert stored_names(project) == ["patient"]


@pytest.mark.parametrize("status", [403, 404, 413, 422])
def test_other_client_errors_are_not_retried(make_observatory, gate, project, status, caplog):
    gate.open()
    gate.fail_next(status)
    client = make_observatory(base_url=gate.url, flush_interval=3600)
    client.record(name="refused", **a_call())
    assert client.flush(timeout=30)

    assert len(gate.requests) == 1
    assert stored_names(project) == []
    assert (client.stats().failed, client.stats().retries) == (1, 0)
    assert f"HTTP {status}: gate says {status}" in caplog.text


def test_a_wrong_key_is_reported_and_not_retried(make_observatory, gate, caplog):
    gate.open()
    client = make_observatory(base_url=gate.url, secret_key="sk-obs-not-a-key", flush_interval=3600)
    client.record(name="unauthorised", **a_call())
    assert client.flush(timeout=30)

    assert len(gate.requests) == 1
    assert (client.stats().failed, client.stats().retries) == (1, 0)
    assert "HTTP 401" in caplog.text and "check the secret key" in caplog.text


def test_rejected_events_are_logged_with_the_field_and_never_retried(observatory, project, caplog):
    good = observatory.record(name="good", **a_call())
    bad = observatory.record(name="bad", **a_call(input_tokens=10, cached_input_tokens=500))
    assert observatory.flush(timeout=30)

    assert list(Call.objects.filter(project=project).values_list("span_id", flat=True)) == [good]
    stats = observatory.stats()
    assert (stats.accepted, stats.rejected, stats.retries, stats.failed) == (1, 1, 0, 0)
    rejection = next(record for record in caplog.records if "rejected event" in record.getMessage())
    assert rejection.levelno == logging.WARNING
    assert f"rejected event {bad} (bad): cached_input_tokens:" in rejection.getMessage()
    assert "exceed input_tokens" in rejection.getMessage()


def test_a_batch_rejected_whole_is_logged_and_not_retried(observatory, project, caplog):
    observatory.record(name="late", **a_call(start_time="2001-01-01T00:00:00Z"))
    observatory.record(name="negative", **a_call(output_tokens=-1))
    assert observatory.flush(timeout=30)

    stats = observatory.stats()
    assert (stats.rejected, stats.retries, stats.failed) == (2, 0, 0)
    assert "(late): start_time:" in caplog.text and "(negative): output_tokens:" in caplog.text


def test_shutdown_sends_what_is_queued(make_observatory, project):
    client = make_observatory(flush_interval=3600)
    for i in range(3):
        client.record(name=f"last-{i}", **a_call())
    assert client.shutdown(timeout=30)

    assert stored_names(project) == ["last-0", "last-1", "last-2"]
    client.record(name="after-shutdown", **a_call())
    assert client.stats().queued == 0


def test_shutdown_gives_up_at_its_timeout_when_the_server_is_down(make_observatory, gate, project):
    client = make_observatory(base_url=gate.url, max_retries=None, flush_interval=3600)
    client.record(name="stranded-0", **a_call())
    client.record(name="stranded-1", **a_call())

    assert client.shutdown(timeout=0.2) is False
    wait_until(lambda: client.stats().failed == 2, what="the stranded events are counted as failed")
    assert client.stats().queued == 0
