"""Hourly score rollups stay equal to the scores they summarise, through inserts, scores
sent again (replaced), retention deletes, and the Quality page's summary over any window."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from dashboards.selectors.quality import score_summary
from dashboards.timerange import TimeRange
from observatory.calls.models import Score, ScoreHour
from observatory.calls.records import ScoreRecord
from observatory.calls.retention import project_retention_apply
from observatory.calls.updates import scores_write

NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def _rollup() -> dict[tuple, tuple]:
    return {
        (row.project_id, row.hour, row.name, row.data_type, row.category):
            (row.count, row.value_count, round(row.value_sum, 9), row.commented)
        for row in ScoreHour.objects.exclude(count=0)
    }


def _from_scores() -> dict[tuple, tuple]:
    """What the rollup must hold, computed from the scores themselves."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT project_id, date_trunc('hour', timestamp, 'UTC'), name, data_type,
                   CASE WHEN data_type = 'categorical' THEN string_value ELSE '' END,
                   count(*), count(value), coalesce(sum(value), 0), count(comment)
            FROM calls_score GROUP BY 1, 2, 3, 4, 5
        """)
        return {tuple(row[:5]): (row[5], row[6], round(row[7], 9), row[8]) for row in cursor.fetchall()}


def _score(score_id: str, at: datetime, *, name: str = "helpful", data_type: str = "numeric", value=None,
           string_value=None, comment=None) -> ScoreRecord:
    return ScoreRecord(score_id=score_id, trace_id=f"t-{score_id}", name=name, data_type=data_type,
                       timestamp=at, value=value, string_value=string_value, comment=comment)


def _random_scores(rng: random.Random, count: int, *, prefix: str = "s") -> list[ScoreRecord]:
    scores = []
    for index in range(count):
        at = NOON + timedelta(minutes=rng.randrange(-600, 600), seconds=rng.randrange(60))
        kind = rng.choice(["numeric", "boolean", "categorical", "text"])
        comment = rng.choice([None, "great answer", "too long"])
        if kind == "numeric":
            score = _score(f"{prefix}{index}", at, name=rng.choice(["accuracy", "relevance"]), value=rng.random(),
                           comment=comment)
        elif kind == "boolean":
            score = _score(f"{prefix}{index}", at, name="thumbs", data_type=kind, value=rng.choice([0, 1]),
                           comment=comment)
        elif kind == "categorical":
            score = _score(f"{prefix}{index}", at, name="tone", data_type=kind,
                           string_value=rng.choice(["friendly", "neutral", "rude"]), comment=comment)
        else:
            score = _score(f"{prefix}{index}", at, name="note", data_type=kind, string_value="free text")
        scores.append(score)
    return scores


def test_new_scores_are_counted_in_their_hour(project, outsider):
    rng = random.Random(7)
    scores_write(project=project, scores=_random_scores(rng, 300))
    scores_write(project=outsider.project, scores=_random_scores(rng, 50))
    assert _rollup() == _from_scores()
    assert sum(row.count for row in ScoreHour.objects.filter(project=project)) == 300


def test_a_score_sent_again_replaces_its_old_contribution(project):
    scores_write(project=project, scores=[_score("s1", NOON, value=0.2, comment="meh")])
    # The same score id, now a different name, value, hour and no comment: the old hour empties.
    scores_write(project=project, scores=[_score("s1", NOON + timedelta(hours=3), name="accuracy", value=0.9)])
    assert _rollup() == _from_scores() == {
        (project.pk, NOON + timedelta(hours=3), "accuracy", "numeric", ""): (1, 1, 0.9, 0),
    }
    # Sent a third time unchanged (a client retry): still counted once.
    scores_write(project=project, scores=[_score("s1", NOON + timedelta(hours=3), name="accuracy", value=0.9)])
    assert _rollup() == _from_scores()
    assert Score.objects.count() == 1


def test_many_replacements_in_random_order_keep_the_rollup_exact(project):
    rng = random.Random(11)
    for round_number in range(6):
        batch = _random_scores(rng, 80)
        rng.shuffle(batch)
        scores_write(project=project, scores=batch)  # the same 80 ids each round, new contents
        assert _rollup() == _from_scores(), round_number


def test_retention_subtracts_deleted_scores_and_drops_their_hours(project, settings):
    settings.RETENTION_DAYS = 3
    today = date(2026, 11, 22)
    old, recent = datetime(2026, 11, 10, 9, 30, tzinfo=UTC), datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    scores_write(project=project, scores=[_score("old", old, value=1), _score("new", recent, value=0.5)])
    project_retention_apply(today=today)
    assert list(Score.objects.values_list("score_id", flat=True)) == ["new"]
    assert _rollup() == _from_scores()
    assert not ScoreHour.objects.filter(hour__lt=datetime(2026, 11, 19, tzinfo=UTC)).exists()


def _window(start: datetime, end: datetime) -> TimeRange:
    return TimeRange(key="custom", start=start, end=end, interval="hour", tz=ZoneInfo("UTC"))


def _summary_from_scores(project, start: datetime, end: datetime) -> list[dict]:
    """The summary the page showed before the rollup: every score of the window read."""
    scores = Score.objects.filter(project=project, timestamp__gte=start, timestamp__lt=end)
    expected: dict[tuple, dict] = {}
    for score in scores:
        row = expected.setdefault((score.name, score.data_type), {"count": 0, "values": [], "commented": 0,
                                                                 "categories": {}})
        row["count"] += 1
        if score.value is not None:
            row["values"].append(score.value)
        row["commented"] += score.comment is not None
        if score.data_type == "categorical":
            row["categories"][score.string_value] = row["categories"].get(score.string_value, 0) + 1
    return [
        {"name": name, "data_type": data_type, "count": row["count"], "commented": row["commented"],
         "mean": round(sum(row["values"]) / len(row["values"]), 9) if row["values"] else None,
         "values": sorted(row["categories"].items(), key=lambda item: (-item[1], item[0]))[:5]}
        for (name, data_type), row in sorted(expected.items(), key=lambda item: (-item[1]["count"], *item[0]))
    ]


@pytest.mark.parametrize("start_offset, end_offset", [
    (timedelta(hours=-8, minutes=-17, seconds=-3), timedelta(hours=7, minutes=41)),  # partial edges
    (timedelta(hours=-6), timedelta(hours=5)),  # whole hours only
    (timedelta(minutes=5), timedelta(minutes=50)),  # inside one hour
    (timedelta(minutes=30), timedelta(hours=1, minutes=10)),  # across one hour boundary, no whole hour
    (timedelta(hours=-12), timedelta(hours=12)),  # every score
])
def test_the_quality_summary_equals_reading_every_score(project, start_offset, end_offset):
    scores_write(project=project, scores=_random_scores(random.Random(3), 400))
    start, end = NOON + start_offset, NOON + end_offset
    summary = score_summary(project=project, time_range=_window(start, end))
    for row in summary:
        row["mean"] = None if row["mean"] is None else round(row["mean"], 9)
    assert summary == _summary_from_scores(project, start, end)
    assert summary  # every window above holds scores


def test_the_summary_never_reads_another_projects_hours(project, outsider):
    scores_write(project=outsider.project, scores=_random_scores(random.Random(5), 100))
    window = _window(NOON - timedelta(days=1), NOON + timedelta(days=1))
    assert score_summary(project=project, time_range=window) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_score_writes_of_one_project_do_not_deadlock(project):
    """Two requests whose scores lock the same hourly rollup rows in opposite orders: each has
    taken one row when both wait on a third writer's uncommitted scores; when it commits, each
    wants the other's row. Score writes of one project take turns, so both succeed."""
    import threading

    from django.db import connections, transaction

    scores_write(project=project, scores=[_score("seed-x", NOON, name="x", value=1),
                                          _score("seed-y", NOON, name="y", value=1)])
    holding, release, errors = threading.Event(), threading.Event(), []

    def in_thread(work):
        def run():
            try:
                work()
            except Exception as error:  # noqa: BLE001 - reported by the assertion below
                errors.append(error)
            finally:
                connections.close_all()
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def third_writer():
        with transaction.atomic():
            scores_write(project=project, scores=[_score("b", NOON + timedelta(hours=3), name="z", value=1),
                                                  _score("d", NOON + timedelta(hours=3), name="z", value=1)])
            holding.set()
            release.wait(30)

    def waiting_backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'")
            return cursor.fetchone()[0]

    def until(condition):
        for _ in range(300):
            if condition():
                return
            threading.Event().wait(0.05)

    holder = in_thread(third_writer)
    holding.wait(30)  # the third writer holds b and d, uncommitted
    # Sorted by score id: the first locks x (a) then waits on b; the second locks y (c) then waits on d.
    first = in_thread(lambda: scores_write(project=project, scores=[_score("a", NOON, name="x", value=2),
                                                                    _score("b", NOON, name="y", value=2)]))
    second = in_thread(lambda: scores_write(project=project, scores=[_score("c", NOON, name="y", value=3),
                                                                     _score("d", NOON, name="x", value=3)]))
    until(lambda: waiting_backends() >= 2)
    release.set()
    for thread in (holder, first, second):
        thread.join(60)
    assert errors == []
    assert _rollup() == _from_scores()
