import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, connections

from observatory.calls import statement_insert
from observatory.calls.models import Call, CallContent, Trace
from observatory.calls.services import calls_write
from observatory.calls.statement_insert import SMALL_BATCH
from observatory.tenancy.models import RedactionMode
from tests.records import record


def test_retry_stores_event_once(project):
    batch = [record(trace_id="t", span_id="a"), record(trace_id="t", span_id="b")]
    first = calls_write(project=project, records=batch)
    retry = calls_write(project=project, records=batch)
    assert first.accepted == [0, 1] and first.duplicates == []
    assert retry.accepted == [] and retry.duplicates == [0, 1]
    assert Call.objects.count() == 2
    trace = Trace.objects.get()
    assert trace.span_count == 2  # the retry did not add to the totals


def test_duplicate_inside_one_batch_is_reported_and_stored_once(project):
    start = datetime.now(UTC)
    result = calls_write(project=project, records=[record(trace_id="t", span_id="a", start_time=start),
                                                  record(trace_id="t", span_id="a", start_time=start)])
    assert result.accepted == [0] and result.duplicates == [1]
    assert Call.objects.count() == 1


def test_same_span_id_in_another_project_is_another_call(project, outsider):
    start = datetime.now(UTC)
    calls_write(project=project, records=[record(trace_id="t", span_id="a", start_time=start)])
    result = calls_write(project=outsider.project, records=[record(trace_id="t", span_id="a", start_time=start)])
    assert result.accepted == [0]


def test_trace_summary_adds_up_its_calls(project):
    start = datetime.now(UTC) - timedelta(minutes=5)
    root = record(trace_id="t", span_id="root", kind="chain", name="answer-question", start_time=start,
                  input_tokens=9999, output_tokens=999, cost=Decimal("9"),  # a chain echoing its children: not summed
                  end_time=start + timedelta(seconds=4), user_id="u1", session_id="s1", tags=["web"])
    llm = record(trace_id="t", span_id="llm", parent_span_id="root", start_time=start + timedelta(seconds=1),
                 latency_ms=2000, input_tokens=1000, output_tokens=100, tags=["beta"])
    failed = record(trace_id="t", span_id="llm2", parent_span_id="root", start_time=start + timedelta(seconds=3),
                    model="in-house-model", status="error", error_type="Timeout")
    # Children first, root last: the order OTLP exporters often deliver in.
    calls_write(project=project, records=[llm])
    calls_write(project=project, records=[failed, root])

    trace = Trace.objects.get(trace_id="t")
    calls = {call.span_id: call for call in Call.objects.all()}
    assert trace.name == "answer-question"
    assert trace.span_count == 3 and trace.model_call_count == 2 and trace.error_count == 1
    assert trace.has_error
    assert trace.input_tokens == 2000 and trace.output_tokens == 300
    assert trace.cost == calls["llm"].cost  # the unknown model adds nothing, it is counted instead
    assert trace.unpriced_call_count == 1
    assert trace.start_time == start and trace.duration_ms == pytest.approx(4000)
    assert trace.user_id == "u1" and trace.session_id == "s1"
    assert sorted(trace.tags) == ["beta", "web"]


def test_latency_and_end_time_derive_from_each_other(project):
    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    calls_write(project=project, records=[
        record(span_id="from-end", start_time=start, end_time=start + timedelta(milliseconds=1500), latency_ms=None),
        record(span_id="from-latency", start_time=start, latency_ms=250.0),
    ])
    from_end = Call.objects.get(span_id="from-end")
    from_latency = Call.objects.get(span_id="from-latency")
    assert from_end.latency_ms == pytest.approx(1500)
    assert from_latency.end_time == start + timedelta(milliseconds=250)


def test_cost_sources(project):
    calls_write(project=project, records=[
        record(span_id="client", cost=Decimal("0.5")),
        record(span_id="catalog", model="gpt-4o", input_tokens=1_000_000, output_tokens=0),
        record(span_id="unknown", model="my-finetune-v3"),
        record(span_id="span", kind="span", model=None),
    ])
    by_span = {call.span_id: call for call in Call.objects.all()}
    assert (by_span["client"].cost, by_span["client"].cost_source) == (Decimal("0.5"), "client")
    assert (by_span["catalog"].cost, by_span["catalog"].cost_source) == (Decimal("2.5"), "catalog")
    assert (by_span["unknown"].cost, by_span["unknown"].cost_source) == (None, "unknown")
    assert (by_span["span"].cost, by_span["span"].cost_source) == (None, "none")


def test_content_lives_apart_from_the_call_row(project):
    calls_write(project=project, records=[record(span_id="c", input=[{"role": "user", "content": "hello"}],
                                                 output="hi there")])
    call = Call.objects.get(span_id="c")
    content = CallContent.objects.get(call_id=call.id)
    assert content.input == [{"role": "user", "content": "hello"}] and content.output == "hi there"
    assert content.start_time == call.start_time


def test_large_metadata_moves_to_the_content_table(project):
    big = {"document": "x" * 5000, "source": "crm"}
    calls_write(project=project, records=[record(span_id="m", metadata=big), record(span_id="s", metadata={"a": 1})])
    moved = Call.objects.get(span_id="m")
    assert moved.metadata == {}
    assert CallContent.objects.get(call_id=moved.id).metadata == big
    assert Call.objects.get(span_id="s").metadata == {"a": 1}


SECRET_PROMPT = "I am jane@corp.example, card 4111 1111 1111 1111, key sk-proj-abcdefghijklmnopqrstuvwx"


def stored_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(input::text, '') || coalesce(output::text, '') || coalesce(metadata::text, '')"
                       " FROM calls_callcontent")
        content = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT metadata::text FROM calls_call")
        return content + " ".join(row[0] for row in cursor.fetchall())


def test_mask_mode_keeps_secrets_out_of_the_database(project):
    project.redaction_mode = RedactionMode.MASK
    project.save()
    calls_write(project=project, records=[record(input=[{"role": "user", "content": SECRET_PROMPT}],
                                                 output="Sure, jane@corp.example", metadata={"email": "jane@corp.example"})])
    text = stored_text()
    for secret in ("jane@corp.example", "4111 1111 1111 1111", "sk-proj-abcdefghijklmnopqrstuvwx"):
        assert secret not in text
    assert "[EMAIL]" in text and "[CARD]" in text and "[API_KEY]" in text


def test_drop_mode_stores_no_content(project):
    project.redaction_mode = RedactionMode.DROP
    project.save()
    calls_write(project=project, records=[record(input=SECRET_PROMPT, output="answer")])
    assert not CallContent.objects.exists()
    assert "jane@corp.example" not in stored_text()


def test_store_mode_keeps_content_as_sent(project):
    project.redaction_mode = RedactionMode.STORE
    project.save()
    calls_write(project=project, records=[record(input=SECRET_PROMPT)])
    assert CallContent.objects.get().input == SECRET_PROMPT


def test_nul_characters_are_replaced_not_refused(project):
    result = calls_write(project=project, records=[record(name="bad\x00name", input="a\x00b", metadata={"k": "v\x00"},
                                                          tags=["t\x00"])])
    assert result.accepted == [0]
    call = Call.objects.get()
    assert call.name == "bad\ufffdname" and call.tags == ["t\ufffd"] and call.metadata == {"k": "v\ufffd"}
    assert CallContent.objects.get().input == "a\ufffdb"


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_the_same_batch_store_it_once(project):
    start = datetime.now(UTC)
    batch = [record(trace_id=f"t{i % 7}", span_id=f"s{i}", start_time=start) for i in range(200)]
    results = []
    barrier = threading.Barrier(4)

    def write():
        barrier.wait()
        try:
            results.append(calls_write(project=project, records=batch))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(len(result.accepted) for result in results) == 200
    assert Call.objects.count() == 200
    assert sum(Trace.objects.values_list("span_count", flat=True)) == 200


def test_a_staging_table_an_older_release_left_in_the_session_is_made_afresh(project):
    # A pooler in session mode may hand a new connection a session where an earlier release
    # made the staging table with other columns.
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS pg_temp.calls_staging")
        cursor.execute("CREATE TEMP TABLE calls_staging (position int4, trace_id text) ON COMMIT DELETE ROWS")
    statement_insert._staging_tables.pop(connection.connection, None)
    batch = [record(trace_id="t", span_id=f"s{i}") for i in range(SMALL_BATCH + 4)]

    assert calls_write(project=project, records=batch).accepted == list(range(SMALL_BATCH + 4))
    assert Call.objects.count() == SMALL_BATCH + 4


def _staged_batch(prefix, **fields):
    return [record(trace_id=prefix, span_id=f"{prefix}{i}", **fields) for i in range(SMALL_BATCH + 4)]


@pytest.mark.django_db(transaction=True)
def test_rows_a_failed_insert_left_staged_never_reach_the_next_batch(project):
    # Outside a transaction the COPY commits the staged rows before the insert runs: when the
    # insert fails (here a CHECK constraint the validation layer would have caught), they stay.
    with pytest.raises(IntegrityError):
        calls_write(project=project, records=_staged_batch("bad", input_tokens=-1))

    result = calls_write(project=project, records=_staged_batch("good"))

    assert result.accepted == list(range(SMALL_BATCH + 4))
    assert sorted(Call.objects.values_list("trace_id", flat=True).distinct()) == ["good"]
    assert Trace.objects.get().span_count == SMALL_BATCH + 4


@pytest.mark.django_db(transaction=True)
def test_a_batch_the_guard_refuses_leaves_nothing_staged(project):
    from observatory.tenancy.models import ApiKey
    from observatory.tenancy.recent_keys import write_guard
    from observatory.tenancy.services import api_key_create

    key = api_key_create(project=project, name="revoked-meanwhile").key
    guard = write_guard([key], project)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=datetime.now(UTC))

    assert calls_write(project=project, records=_staged_batch("refused"), guard=guard).stale
    assert calls_write(project=project, records=_staged_batch("next")).accepted == list(range(SMALL_BATCH + 4))
    assert sorted(Call.objects.values_list("trace_id", flat=True).distinct()) == ["next"]


@pytest.mark.django_db(transaction=True)
def test_the_staging_table_is_truncated_once_enough_rows_passed_through(project, monkeypatch):
    # Each insert deletes its staged rows; nothing vacuums a temporary table, so without the
    # truncation the table would grow by every batch's rows.
    monkeypatch.setattr(statement_insert, "STAGED_ROWS_BEFORE_TRUNCATE", 3 * (SMALL_BATCH + 4))
    sizes = []
    for batch in range(12):
        calls_write(project=project, records=_staged_batch(f"t{batch}-"))
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_relation_size('pg_temp.calls_staging')")
            sizes.append(cursor.fetchone()[0])

    assert Call.objects.count() == 12 * (SMALL_BATCH + 4)
    assert max(sizes) <= max(sizes[:3]) < 12 * min(size for size in sizes if size)


@pytest.mark.django_db(transaction=True)
def test_connections_that_are_not_kept_stage_and_insert_in_one_transaction(project, monkeypatch):
    # DATABASE_CONN_MAX_AGE=0 is what the README asks for behind a pooler in transaction mode,
    # which may run each transaction in another server session with its own staging table.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    stage = statement_insert._stage
    in_transaction = []

    def watched(*args, **kwargs):
        in_transaction.append(connection.in_atomic_block)
        return stage(*args, **kwargs)

    monkeypatch.setattr(statement_insert, "_stage", watched)
    assert calls_write(project=project, records=_staged_batch("pooled")).accepted == list(range(SMALL_BATCH + 4))
    assert calls_write(project=project, records=_staged_batch("again")).accepted == list(range(SMALL_BATCH + 4))
    assert in_transaction == [True, True]
    assert Call.objects.count() == 2 * (SMALL_BATCH + 4)


def test_new_calls_mark_their_minutes_for_rollup_and_retries_do_not(project):
    from observatory.calls.models import ChangedMinute

    now = datetime(2026, 11, 21, 10, 30, 45, tzinfo=UTC)
    late = now - timedelta(days=3, seconds=10)
    batch = [record(start_time=now), record(start_time=now + timedelta(seconds=5)), record(start_time=late)]
    calls_write(project=project, records=batch)
    minutes = set(ChangedMinute.objects.filter(project=project).values_list("minute", flat=True))
    assert minutes == {now.replace(second=0), late.replace(second=0, microsecond=0)}

    ChangedMinute.objects.all().delete()  # a rollup job claimed them
    calls_write(project=project, records=batch)
    assert not ChangedMinute.objects.exists()


def test_small_and_large_batches_store_the_same_rows(project, outsider):
    """Up to SMALL_BATCH records travel as one JSON parameter, more through COPY: same result."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    batch = [record(trace_id=f"t{i % 3}", span_id=f"s{i}", start_time=start + timedelta(seconds=i), tags=["a", "b"],
                    metadata={"i": i}, input=f"q{i}", output=None if i % 2 else f"a{i}", cost=Decimal("0.5") if i == 3
                    else None, status="error" if i == 4 else "ok") for i in range(SMALL_BATCH)]
    calls_write(project=project, records=batch)
    calls_write(project=outsider.project, records=batch + [record(span_id="extra")])

    def stored(owner):
        rows = Call.objects.filter(project=owner).exclude(span_id="extra").order_by("span_id")
        return [{k: v for k, v in row.items() if k not in ("id", "project_id", "ingested_at")} for row in rows.values()]

    assert stored(project) == stored(outsider.project)
    assert CallContent.objects.filter(project=project).count() == SMALL_BATCH
    assert CallContent.objects.filter(project=outsider.project).count() == SMALL_BATCH  # "extra" has none
    traces = lambda owner: list(Trace.objects.filter(project=owner).order_by("trace_id").values_list(
        "trace_id", "span_count", "cost", "error_count", "tags"))
    assert traces(project) == [row for row in traces(outsider.project) if row[0] != "extra"][:3]
