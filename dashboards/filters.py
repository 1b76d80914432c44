"""Dimension filters in the URL (`?model=gpt-4o&feature=support-chat`) and their choices.

Metric pages filter by the dimensions rollups are kept by, so every number stays a rollup
read. The choices offered are the values seen in the page's range, busiest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from observatory.metrics.selectors import metrics_query
from observatory.tenancy.models import Project

# The filters metric pages offer, in the order the filter bar shows them.
METRIC_FILTERS = ("model", "provider", "feature", "environment")
LABELS = {
    "model": "Model",
    "provider": "Provider",
    "feature": "Feature",
    "environment": "Environment",
    "prompt_name": "Prompt",
    "prompt_version": "Prompt version",
    "status": "Status",
    "finish_reason": "Finish reason",
}
MAX_CHOICES = 100


def dimension_filters(params: Mapping[str, str], *, names: Iterable[str]) -> dict[str, list[str]]:
    """{dimension: [value]} for each of `names` given a value in `params`."""
    return {name: [params[name]] for name in names if params.get(name)}


def filter_choices(*, project: Project, start, end, names: Iterable[str]) -> list[dict]:
    """For the filter bar: each dimension with the values calls had in [start, end)."""
    choices = []
    for name in names:
        rows = metrics_query(project=project, start=start, end=end, metrics=["count"], group_by=[name],
                             order_by="-count", limit=MAX_CHOICES).rows
        choices.append({"name": name, "label": LABELS[name], "values": [row[name] for row in rows if row[name]]})
    return choices
