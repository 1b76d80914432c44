"""Runaway loop detection: flag traces that keep going while they still grow.

An agent stuck in a loop sends the same prompt again and again, piles up spans and burns
money until someone notices. Every minute (tasks.py) each project's recent calls are read
through the (project_id, start_time) index: traces with a call in the last
`loop_window_minutes` are compared with the project's limits (spans and spend from the
trace's running totals, identical prompts counted by their hash within the window). A trace
past any limit gets `loop_flagged_at` (kept from the first time) and the reasons, which grow
if it passes more limits later. The trace list shows the flag; a "loop" alert rule fires on it.

The work per run is the window's calls, not the project's history. Flags are written in
(project_id, trace_id) order, the order ingest locks trace summaries in, so the two never
deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from observatory.budgets.services import each_isolated
from observatory.reliability.selectors import reliability_settings_get
from observatory.tenancy.models import Project

SPANS, SPEND, REPEATED_PROMPT = "spans", "spend", "repeated_prompt"
LOOP_REASON_LABELS = {SPANS: "too many spans", SPEND: "too much spend", REPEATED_PROMPT: "same prompt repeated"}

_CANDIDATES = """
WITH recent AS MATERIALIZED (
    SELECT trace_id, input_hash FROM calls_call
    WHERE project_id = %(project)s AND start_time >= %(since)s AND start_time <= %(now)s
), repeats AS (
    SELECT trace_id, max(n)::int AS repeats FROM (
        SELECT trace_id, count(*) AS n FROM recent WHERE input_hash IS NOT NULL GROUP BY trace_id, input_hash
    ) per_prompt GROUP BY trace_id
)
SELECT t.trace_id, reasons, r.repeats FROM (SELECT DISTINCT trace_id FROM recent) touched
JOIN calls_trace t ON t.project_id = %(project)s AND t.trace_id = touched.trace_id
LEFT JOIN repeats r ON r.trace_id = touched.trace_id
CROSS JOIN LATERAL (SELECT array_remove(ARRAY[
    CASE WHEN t.span_count > %(spans)s THEN 'spans' END,
    CASE WHEN t.cost > %(cost)s THEN 'spend' END,
    CASE WHEN coalesce(r.repeats, 0) >= %(repeats)s THEN 'repeated_prompt' END
], NULL) AS reasons) AS flags
WHERE cardinality(reasons) > 0
  AND (t.loop_flagged_at IS NULL OR NOT t.loop_reasons @> reasons OR coalesce(t.repeated_prompts, 0) < r.repeats)
"""

_FLAG = """
WITH flags AS (
    SELECT * FROM unnest(%(traces)s::text[], %(reasons)s::text[], %(repeats)s::int[]) AS f(trace_id, reasons, repeats)
), locked AS (
    SELECT t.id FROM calls_trace t JOIN flags USING (trace_id)
    WHERE t.project_id = %(project)s ORDER BY t.project_id, t.trace_id FOR UPDATE OF t
)
UPDATE calls_trace t SET
    loop_flagged_at = coalesce(t.loop_flagged_at, %(now)s),
    loop_reasons = ARRAY(SELECT DISTINCT reason FROM unnest(coalesce(t.loop_reasons, '{}')
                                                           || string_to_array(f.reasons, ',')) AS reason ORDER BY 1),
    repeated_prompts = greatest(t.repeated_prompts, f.repeats)
FROM flags f, locked
WHERE t.id = locked.id AND t.trace_id = f.trace_id AND t.project_id = %(project)s
RETURNING t.loop_flagged_at = %(now)s
"""


@dataclass
class LoopReport:
    projects: int = 0
    failed: int = 0
    flagged: int = 0  # traces flagged for the first time
    updated: int = 0  # traces already flagged whose evidence grew


def loops_detect(*, project: Project, now: datetime | None = None) -> LoopReport:
    """Flag `project`'s traces that passed its loop limits; see the module docstring."""
    now = (now or timezone.now()).astimezone(UTC)
    limits = reliability_settings_get(project=project)
    report = LoopReport(projects=1)
    with connection.cursor() as cursor:
        cursor.execute(_CANDIDATES, {
            "project": project.pk, "since": now - timedelta(minutes=limits.loop_window_minutes), "now": now,
            "spans": limits.loop_max_spans, "cost": limits.loop_max_cost, "repeats": limits.loop_max_repeats,
        })
        candidates = cursor.fetchall()
        if not candidates:
            return report
        with transaction.atomic():
            cursor.execute(_FLAG, {
                "project": project.pk, "now": now, "traces": [trace_id for trace_id, _, _ in candidates],
                "reasons": [",".join(reasons) for _, reasons, _ in candidates],
                "repeats": [repeats for _, _, repeats in candidates],
            })
            for (new,) in cursor.fetchall():
                if new:
                    report.flagged += 1
                else:
                    report.updated += 1
    return report


def loops_detect_all(*, now: datetime | None = None, time_budget_seconds: float | None = None) -> LoopReport:
    """Every project, each on its own (one failing is logged, the others go on)."""
    reports, failed = each_isolated(items=Project.objects.order_by("pk"),
                                    action=lambda project: loops_detect(project=project, now=now),
                                    what="detecting loops in project", time_budget_seconds=time_budget_seconds)
    total = LoopReport(projects=len(reports), failed=failed)
    for report in reports:
        total.flagged += report.flagged
        total.updated += report.updated
    return total
