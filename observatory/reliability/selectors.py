from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from observatory.calls.models import Trace
from observatory.metrics.selectors import metrics_query
from observatory.metrics.sql import filter_params, filters_sql
from observatory.reliability.models import ReliabilitySettings
from observatory.tenancy.models import Project


def reliability_settings_get(*, project: Project) -> ReliabilitySettings:
    """The project's limits and thresholds: its own once edited, the defaults until then."""
    return ReliabilitySettings.objects.filter(project=project).first() or ReliabilitySettings(project=project)


@dataclass(frozen=True)
class FallbackPair:
    from_provider: str | None
    from_model: str | None
    provider: str | None
    model: str | None
    calls: int  # fallback calls from the one to the other
    failed: int  # of which failed too
    primary_calls: int | None  # calls to the primary model in the window (None: not named)

    @property
    def rate(self) -> float | None:
        """Fallbacks per call to the primary model: 0.03 means 3 in 100 fell back to this one."""
        return self.calls / self.primary_calls if self.primary_calls else None

    @property
    def success_rate(self) -> float:
        return (self.calls - self.failed) / self.calls


def fallback_pairs(*, project: Project, start: datetime, end: datetime,
                   filters: Mapping[str, Sequence[str]] | None = None, limit: int = 50) -> list[FallbackPair]:
    """Which model fell back to which in [start, end), most frequent first, among calls whose
    dimensions match `filters` (as in metrics_query). Reads only the fallback calls (a partial
    index holds them) and the primary models' call counts from rollups."""
    filters = dict(filters or {})
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT fallback_from_provider, fallback_from_model, provider, model, count(*),
                   count(*) FILTER (WHERE status = 'error')
            FROM calls_call c
            WHERE project_id = %(project)s AND start_time >= %(start)s AND start_time < %(end)s
              AND (fallback_from_model IS NOT NULL OR fallback_from_provider IS NOT NULL){filters_sql(filters)}
            GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC, 2, 4 LIMIT %(limit)s
            """,
            {"project": project.pk, "start": start, "end": end, "limit": limit, **filter_params(filters)},
        )
        rows = cursor.fetchall()
    primaries = sorted({row[1] for row in rows if row[1]})
    counts = {}
    if primaries:
        # The primary's own calls, whatever the page filters say about the fallback model.
        others = {name: values for name, values in filters.items() if name not in ("model", "provider")}
        counts = {row["model"]: row["count"] for row in metrics_query(
            project=project, start=start, end=end, metrics=["count"], group_by=["model"],
            filters={**others, "model": primaries}).rows}
    return [FallbackPair(*row, primary_calls=counts.get(row[1]) if row[1] else None) for row in rows]


def loops_list(*, project: Project, start: datetime, end: datetime, limit: int = 20) -> list[Trace]:
    """Traces flagged as runaway loops in [start, end), most recently flagged first."""
    return list(Trace.objects.filter(project=project, loop_flagged_at__gte=start, loop_flagged_at__lt=end)
                .order_by("-loop_flagged_at", "-id")[:limit])
