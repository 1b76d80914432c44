"""Concurrent small writes of one project share transactions, and each still gets its own answer."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from ingest.group_commit import GroupCommit
from observatory.calls.models import Call
from tests.records import record

pytestmark = pytest.mark.django_db(transaction=True)
START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)


def in_threads(functions) -> list:
    results: list = [None] * len(functions)

    def run(index, function):
        try:
            results[index] = function()
        except BaseException as error:  # reported to the test
            results[index] = error
        finally:
            connections.close_all()

    # Daemons: a request never woken fails its test instead of keeping the run from ending.
    threads = [threading.Thread(target=run, args=(index, function), daemon=True)
               for index, function in enumerate(functions)]
    for thread in threads:
        thread.start()
    return threads, results


def test_each_request_gets_its_own_positions_and_retries_stay_single(project):
    committer = GroupCommit()
    same = record(trace_id="t", span_id="same", start_time=START)
    batches = [[record(trace_id=f"t{i}", span_id="a", start_time=START), record(trace_id=f"t{i}", span_id="b",
                                                                                 start_time=START)]
               for i in range(12)] + [[same], [same]]
    threads, results = in_threads([lambda batch=batch: committer.write(project=project, records=batch)
                                   for batch in batches])
    for thread in threads:
        thread.join()
    for result in results[:12]:
        assert result.accepted == [0, 1] and result.duplicates == []
    # The same call sent twice at once is stored once: one request learns it was a duplicate.
    assert sorted((len(r.accepted), len(r.duplicates)) for r in results[12:]) == [(0, 1), (1, 0)]
    assert Call.objects.filter(project=project).count() == 25


def test_every_request_of_rounds_of_concurrent_ones_is_woken_with_its_own_answer(project):
    committer = GroupCommit()
    for round_number in range(10):
        batches = [[record(trace_id=f"r{round_number}-{i}", span_id="x", start_time=START)] for i in range(16)]
        threads, results = in_threads([lambda batch=batch: committer.write(project=project, records=batch)
                                       for batch in batches])
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "a request was never woken"
        assert all(result.accepted == [0] for result in results), results
    assert Call.objects.filter(project=project).count() == 160
    assert committer._queues == {}


def queued_behind_a_held_write(committer: GroupCommit, project, followers: list, keys: list | None = None
                               ) -> tuple[list, list]:
    """Run `followers` (records, one request each, with the unproven key of the same position
    in `keys`) queued behind a leader whose write is held up, then let it go. Returns the
    leader's and the followers' results, once all are done."""
    keys = keys or [None] * len(followers)
    blocker = connections.create_connection("default")
    try:
        committer.write(project=project, records=[record(trace_id="busy", span_id="seed", start_time=START)])
        with blocker.cursor() as cursor:
            # Hold the lock the leader's trace upsert needs, so its write waits while others queue.
            cursor.execute("BEGIN")
            cursor.execute("SELECT 1 FROM calls_trace WHERE project_id = %s AND trace_id = 'busy' FOR UPDATE",
                           [project.pk])
            leader, leader_results = in_threads([lambda: committer.write(
                project=project, records=[record(trace_id="busy", span_id="leader", start_time=START)])])
            _wait_for(lambda: committer._queues.get(project.pk) and committer._queues[project.pk].writing)
            threads, results = in_threads([lambda r=r, k=k: committer.write(project=project, records=[r], unproven_key=k)
                                           for r, k in zip(followers, keys, strict=True)])
            _wait_for(lambda: len(committer._queues[project.pk].waiting) == len(followers))
            cursor.execute("COMMIT")
        for thread in leader + threads:
            thread.join()
    finally:
        blocker.close()
    return leader_results, results


def test_requests_queued_behind_a_write_go_together_in_the_next_transaction(project):
    committer = GroupCommit()
    _, results = queued_behind_a_held_write(
        committer, project, [record(trace_id=f"f{i}", span_id="x", start_time=START) for i in range(5)])
    assert all(result.accepted == [0] for result in results)
    # now() is the transaction's start: the five followers share one transaction.
    moments = set(Call.objects.filter(trace_id__startswith="f").values_list("ingested_at", flat=True))
    assert len(moments) == 1


def test_a_failed_write_fails_every_request_of_the_group(project):
    committer = GroupCommit()
    bad = record(trace_id="t", span_id="x", start_time=START, input_tokens=-5)  # violates a check constraint
    with pytest.raises(Exception, match="calls_call_tokens_nonnegative"):
        committer.write(project=project, records=[bad])
    assert committer._queues == {}  # nothing left waiting
    assert committer.write(project=project, records=[record(start_time=START)]).accepted == [0]


def test_a_failed_group_fails_all_its_requests_and_the_next_leader_carries_on(project):
    committer = GroupCommit()
    # Queued behind the held write: three good requests and one that breaks a constraint.
    records = [record(trace_id=f"g{i}", span_id="x", start_time=START) for i in range(3)]
    records.append(record(trace_id="bad", span_id="x", start_time=START, input_tokens=-5))
    leader_result, results = queued_behind_a_held_write(committer, project, records)
    assert leader_result[0].accepted == [0]
    # One transaction: the bad record fails it, and with it every request it carried.
    assert all(isinstance(result, Exception) and "calls_call_tokens_nonnegative" in str(result) for result in results)
    assert not Call.objects.filter(trace_id__startswith="g").exists()
    assert committer._queues == {}
    assert committer.write(project=project, records=records[:3]).accepted == [0, 1, 2]  # their retry


def _wait_for(condition, attempts: int = 500) -> None:
    import time

    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition never held")
