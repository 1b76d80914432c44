"""Runaway loop detection: traces past their project's limits are flagged while they grow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from observatory.calls.models import Trace
from observatory.calls.services import calls_write
from observatory.reliability.loops import loops_detect, loops_detect_all
from observatory.reliability.services import reliability_settings_update
from tests.records import record

NOW = datetime.now(UTC)
PROMPT = [{"role": "user", "content": "Search the docs for the refund policy"}]


def calls(trace_id: str, count: int, *, prompt=PROMPT, ago: timedelta = timedelta(minutes=1), **fields):
    return [record(trace_id=trace_id, span_id=f"{trace_id}-{ago.total_seconds()}-{i}", input=prompt,
                   start_time=NOW - ago + timedelta(milliseconds=i), **fields) for i in range(count)]


def flags(project) -> dict[str, tuple]:
    return {t.trace_id: (t.loop_reasons, t.repeated_prompts)
            for t in Trace.objects.filter(project=project, loop_flagged_at__isnull=False)}


def test_the_same_prompt_sent_as_often_as_the_limit_flags_the_trace(project):
    calls_write(project=project, records=calls("looping", 5) + calls("busy", 4)
                + [r for i in range(6) for r in calls("varied", 1, prompt=[{"role": "user", "content": f"step {i}"}],
                                                      ago=timedelta(seconds=30 + i))])
    report = loops_detect(project=project, now=NOW)
    assert flags(project) == {"looping": (["repeated_prompt"], 5)}
    assert report.flagged == 1


def test_too_many_spans_or_too_much_spend_flags_the_trace(project):
    reliability_settings_update(project=project, actor=None, loop_max_spans=10, loop_max_cost=Decimal("1"))
    calls_write(project=project, records=[
        *[record(trace_id="wide", span_id=f"w{i}", kind="span", start_time=NOW - timedelta(seconds=i))
          for i in range(11)],
        record(trace_id="pricey", span_id="p1", cost=Decimal("1.5"), start_time=NOW - timedelta(seconds=5)),
        record(trace_id="fine", span_id="f1", cost=Decimal("0.5"), start_time=NOW - timedelta(seconds=5)),
    ])
    loops_detect(project=project, now=NOW)
    assert flags(project) == {"wide": (["spans"], None), "pricey": (["spend"], None)}


def test_a_flagged_trace_keeps_its_first_flag_time_and_gathers_evidence_as_it_grows(project):
    reliability_settings_update(project=project, actor=None, loop_max_spans=5)
    calls_write(project=project, records=calls("agent", 3, prompt=None)
                + calls("agent", 3, prompt=None, ago=timedelta(seconds=50)))
    first = loops_detect(project=project, now=NOW)
    flagged_at = Trace.objects.get(trace_id="agent").loop_flagged_at
    assert (first.flagged, flags(project)) == (1, {"agent": (["spans"], None)})

    later = NOW + timedelta(seconds=30)
    calls_write(project=project, records=calls("agent", 5, ago=timedelta(seconds=-20)))
    second = loops_detect(project=project, now=later)
    assert (second.flagged, second.updated) == (0, 1)
    assert flags(project) == {"agent": (["repeated_prompt", "spans"], 5)}
    assert Trace.objects.get(trace_id="agent").loop_flagged_at == flagged_at
    assert loops_detect(project=project, now=later).updated == 0  # nothing new: nothing written


def test_prompts_repeated_before_the_window_are_not_counted(project):
    reliability_settings_update(project=project, actor=None, loop_window_minutes=10)
    calls_write(project=project, records=calls("slow", 3, ago=timedelta(minutes=30)) + calls("slow", 3))
    loops_detect(project=project, now=NOW)
    assert flags(project) == {}


def test_each_project_has_its_own_limits(project, outsider):
    reliability_settings_update(project=project, actor=None, loop_max_repeats=10)
    calls_write(project=project, records=calls("mine", 6))
    calls_write(project=outsider.project, records=calls("theirs", 6))
    report = loops_detect_all(now=NOW)
    assert flags(project) == {} and flags(outsider.project) == {"theirs": (["repeated_prompt"], 6)}
    assert (report.projects, report.failed, report.flagged) == (2, 0, 1)


def test_every_scheduled_job_has_a_registered_task():
    from observatory.celery import app

    app.loader.import_default_modules()
    schedule = app.conf.beat_schedule
    assert schedule["loops-detect"]["task"] == "observatory.reliability.tasks.loops_detect"
    assert schedule["loops-detect"]["schedule"].minute == set(range(60))
    missing = {name: entry["task"] for name, entry in schedule.items() if entry["task"] not in app.tasks}
    assert missing == {}
