"""The Quality page: finish reasons and truncation over time, error types, scores and
feedback, and prompt versions side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from django.db import connection

from dashboards.selectors.common import NO_INTERVAL, unknown_costs, window_rows
from dashboards.timerange import TimeRange
from observatory.calls.models import Score, ScoreDataType
from observatory.metrics.dimensions import DIMENSIONS
from observatory.tenancy.models import Project

TRUNCATED = "length"
ERROR_TYPES = 20
COMMENTS = 10
# Scores are matched to prompt versions through their traces' calls: the latest this many
# scores of the range, so that the page costs the same however many scores a project has.
SCORE_SAMPLE = 2000
VERSION_METRICS = ["count", "error_rate", "cost", "unpriced_count", "latency_p50", "latency_p95",
                   "finish_reason_share"]


@dataclass
class Quality:
    reasons_series: list[dict[str, Any]]  # count per bucket and finish_reason (calls that have one)
    rates_series: list[dict[str, Any]]  # truncation_rate and error_rate per bucket
    reasons: list[dict[str, Any]]  # finish_reason, count, share over the range
    without_reason: int  # calls with no finish reason: embeddings and failed calls
    error_types: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    comments: list[Score]
    versions: list[dict[str, Any]]


def truncation_rate(shares: dict[str, float] | None) -> float | None:
    """The share of calls that stopped at their token limit, among calls that finished (and
    so have a finish reason): embeddings and failed calls would otherwise dilute it."""
    finished = 1.0 - (shares or {}).get("", 0.0)
    return (shares or {}).get(TRUNCATED, 0.0) / finished if finished > 1e-9 else None


def error_types(*, project: Project, time_range: TimeRange, filters: Mapping[str, Sequence[str]],
                limit: int = ERROR_TYPES) -> list[dict[str, Any]]:
    """Errors by type and model. Error types are not a rollup dimension (they are many and
    free-form), so this reads error rows, through the errors-only partial index. A workflow
    span that only failed because a call inside it did is not an error type of its own."""
    assert set(filters) <= set(DIMENSIONS), filters  # names go into the SQL text
    conditions = "".join(f" AND {name} = ANY(%(f_{name})s)" for name in filters)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT coalesce(error_type, ''), coalesce(model, ''), count(*), max(start_time)
            FROM calls_call
            WHERE project_id = %(project)s AND status = 'error' AND start_time >= %(start)s AND start_time < %(end)s
              AND (error_type IS NOT NULL OR kind IN ('generation', 'embedding')){conditions}
            GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT %(limit)s
            """,
            {"project": project.pk, "start": time_range.start, "end": time_range.end, "limit": limit,
             **{f"f_{name}": list(values) for name, values in filters.items()}},
        )
        return [{"error_type": error_type or None, "model": model or None, "count": count, "last_seen": last}
                for error_type, model, count, last in cursor.fetchall()]


# The hours of a window read from ScoreHour; only its partial first and last hours from scores.
_SCORE_SUMMARY = """
WITH parts AS (
    SELECT name, data_type, category, count, value_count, value_sum, commented
    FROM calls_scorehour
    WHERE project_id = %(project)s AND hour >= %(first_hour)s AND hour < %(last_hour)s AND count <> 0
    UNION ALL
    SELECT name, data_type, CASE WHEN data_type = 'categorical' THEN coalesce(string_value, '') ELSE '' END,
           1, (value IS NOT NULL)::int, coalesce(value, 0), (comment IS NOT NULL)::int
    FROM calls_score
    WHERE project_id = %(project)s AND (timestamp >= %(start)s AND timestamp < %(first_hour)s
                                        OR timestamp >= %(last_hour)s AND timestamp < %(end)s)
)
SELECT name, data_type, category, sum(count)::bigint, sum(value_count)::bigint, sum(value_sum)::float8,
       sum(commented)::bigint
FROM parts GROUP BY 1, 2, 3
"""
CATEGORY_VALUES = 5


def score_summary(*, project: Project, time_range: TimeRange) -> list[dict[str, Any]]:
    """Per score name and type: how many, the mean of numeric and boolean scores (the share
    of 1s for booleans), how many carry a comment, and categorical values by frequency."""
    start, end = time_range.start, time_range.end
    first_hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if first_hour < start:
        first_hour += timedelta(hours=1)
    last_hour = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if last_hour <= first_hour:  # no whole hour inside: every score is read from the table
        first_hour = last_hour = start
    with connection.cursor() as cursor:
        cursor.execute(_SCORE_SUMMARY, {"project": project.pk, "start": start, "end": end,
                                        "first_hour": first_hour, "last_hour": last_hour})
        parts = cursor.fetchall()
    summary: dict[tuple[str, str], dict[str, Any]] = {}
    for name, data_type, category, count, value_count, value_sum, commented in parts:
        if not count:
            continue
        row = summary.setdefault((name, data_type), {"name": name, "data_type": data_type, "count": 0,
                                                     "value_count": 0, "value_sum": 0.0, "commented": 0,
                                                     "values": []})
        row["count"] += count
        row["value_count"] += value_count
        row["value_sum"] += value_sum
        row["commented"] += commented
        if data_type == ScoreDataType.CATEGORICAL:
            row["values"].append((category, count))
    rows = sorted(summary.values(), key=lambda row: (-row["count"], row["name"], row["data_type"]))
    for row in rows:
        value_count, value_sum = row.pop("value_count"), row.pop("value_sum")
        row["mean"] = value_sum / value_count if value_count else None
        row["values"] = sorted(row["values"], key=lambda value: (-value[1], value[0]))[:CATEGORY_VALUES]
    return rows


def latest_comments(*, project: Project, time_range: TimeRange, limit: int = COMMENTS) -> list[Score]:
    return list(Score.objects.filter(project=project, timestamp__gte=time_range.start, timestamp__lt=time_range.end,
                                     comment__isnull=False).order_by("-timestamp", "-id")[:limit])


def scores_by_prompt_version(*, project: Project, time_range: TimeRange) -> dict[tuple[str, str], dict[str, Any]]:
    """Mean numeric/boolean score per (prompt name, version) and score name, over the latest
    SCORE_SAMPLE scores of the range. A score on a call counts for that call's version; a
    score on a whole trace for each version the trace used. Each score finds its calls
    through its trace's time span, so only the partitions of that span are read."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH sample AS (
                SELECT trace_id, span_id, name, value FROM calls_score
                WHERE project_id = %(project)s AND timestamp >= %(start)s AND timestamp < %(end)s
                  AND trace_id IS NOT NULL AND value IS NOT NULL
                ORDER BY timestamp DESC LIMIT %(sample)s
            )
            SELECT v.prompt_name, v.prompt_version, s.name, avg(s.value), count(*)
            FROM sample s
            JOIN calls_trace t ON t.project_id = %(project)s AND t.trace_id = s.trace_id
            CROSS JOIN LATERAL (
                SELECT DISTINCT c.prompt_name, c.prompt_version FROM calls_call c
                WHERE c.project_id = %(project)s AND c.trace_id = s.trace_id
                  AND c.start_time >= t.start_time AND c.start_time <= t.end_time
                  AND c.prompt_version IS NOT NULL AND (s.span_id IS NULL OR c.span_id = s.span_id)
            ) v
            GROUP BY 1, 2, 3
            """,
            {"project": project.pk, "start": time_range.start, "end": time_range.end, "sample": SCORE_SAMPLE},
        )
        result: dict[tuple[str, str], dict[str, Any]] = {}
        for name, version, score, mean, count in cursor.fetchall():
            result.setdefault((name or "", version), {})[score] = {"mean": mean, "count": count}
        return result


def quality_get(*, project: Project, time_range: TimeRange, filters: Mapping[str, Sequence[str]],
                with_comments: bool) -> Quality:
    common = {"project": project, "time_range": time_range, "filters": filters}
    rates = window_rows(**common, metrics=["count", "error_rate", "finish_reason_share"])
    for row in rates:
        row["truncation_rate"] = truncation_rate(row.pop("finish_reason_share"))
    reasons = window_rows(**common, metrics=["count"], group_by=["finish_reason"], interval=NO_INTERVAL,
                          order_by="-count")
    without_reason = sum(row["count"] for row in reasons if not row["finish_reason"])
    reasons = [row for row in reasons if row["finish_reason"]]
    calls = sum(row["count"] for row in reasons)
    for row in reasons:
        row["share"] = row["count"] / calls if calls else None
    versions = unknown_costs(window_rows(**common, metrics=VERSION_METRICS, group_by=["prompt_name", "prompt_version"],
                                         interval=NO_INTERVAL))
    version_scores = scores_by_prompt_version(project=project, time_range=time_range)
    versions = [row for row in versions if row.get("prompt_version")]
    for row in versions:
        row["truncation_rate"] = truncation_rate(row.pop("finish_reason_share"))
        row["scores"] = version_scores.get((row.get("prompt_name") or "", row["prompt_version"]), {})
    versions.sort(key=lambda row: (row.get("prompt_name") or "", row["prompt_version"]))
    return Quality(
        reasons_series=[row for row in window_rows(**common, metrics=["count"], group_by=["finish_reason"])
                        if row["finish_reason"]],
        rates_series=rates,
        reasons=reasons,
        without_reason=without_reason,
        error_types=error_types(**common),
        scores=score_summary(project=project, time_range=time_range),
        comments=latest_comments(project=project, time_range=time_range) if with_comments else [],
        versions=versions,
    )
