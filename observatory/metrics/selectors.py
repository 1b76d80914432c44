"""Metric queries: counts, rates, tokens, cost and percentiles over any window and grouping.

A window is covered by the coarsest rows that fit (day, then hour, then minute rollups) and
raw calls for whatever is left at the edges, so the answer is exact to the second without
scanning raw calls for the bulk of it. A bucket whose minutes are still waiting for the job
(a mark in calls_changedminute) is read at the next finer level, down to raw
calls: an answer never depends on how far behind the job is, only its speed does. All reads
of one query share one snapshot when the caller is not already in a transaction.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from observatory.metrics.dimensions import ALL, DIMENSIONS, dimensions_of, stored_mask_for
from observatory.metrics.partitions import minute_rows_from, rollups_from, user_hours_from
from observatory.metrics.signals import SIGNAL_MEASURES
from observatory.metrics.services import BUCKET_WIDTH, DIMENSION_FAMILY, USER_FAMILY, bucket_floor
from observatory.metrics.sketches import STORED_QUANTILES, key_value, quantiles, sql_bins_payload
from observatory.metrics.sql import (
    MEASURES,
    MONEY_MEASURES,
    TOKEN_MEASURES,
    filter_params,
    quantile_column,
    raw_rows_sql,
)
from observatory.tenancy.models import Project

INTERVALS = ("minute", "hour", "day")
_FINER = {"day": "hour", "hour": "minute", "minute": None}
USER = "user_id"
GROUPABLE = (*DIMENSIONS, USER)
MAX_BUCKETS = 10_000

# Metric name -> the rollup measure it sums.
SUM_METRICS: dict[str, str] = {
    "count": "calls",
    "errors": "errors",
    **{name: name for name in TOKEN_MEASURES},
    "cost": "cost",
    "unpriced_count": "unpriced_calls",
    **{name: name for name in SIGNAL_MEASURES},
}

# Metrics in USD: only roles that may see costs read them.
COST_METRICS = frozenset(name for name, measure in SUM_METRICS.items() if measure in MONEY_MEASURES)


@dataclass(frozen=True)
class Ratio:
    """A metric that divides sums: (sum of `numerator` - sum of `minus`) / (sum of
    `denominator` - sum of `denominator_minus`), None when the denominator is 0."""

    numerator: tuple[str, ...]
    denominator: str = "calls"
    minus: tuple[str, ...] = ()
    denominator_minus: tuple[str, ...] = ()

    @property
    def measures(self) -> tuple[str, ...]:
        return (*self.numerator, *self.minus, self.denominator, *self.denominator_minus)

    def of(self, sums: Mapping[str, Any]) -> float | None:
        below = sums[self.denominator] - sum(sums[name] for name in self.denominator_minus)
        above = sum(sums[name] for name in self.numerator) - sum(sums[name] for name in self.minus)
        return float(above) / float(below) if below else None


# Rates are shares of model calls, from 0 to 1 (retries_per_call can exceed 1).
RATIO_METRICS: dict[str, Ratio] = {
    "error_rate": Ratio(("errors",)),
    "cache_hit_rate": Ratio(("cache_hits",)),
    "retry_rate": Ratio(("retries",)),
    # Retries per first try: 0.5 means every other request needed one more attempt.
    "retries_per_call": Ratio(("retries",), denominator_minus=("retries",)),
    "fallback_rate": Ratio(("fallbacks",)),
    "fallback_success_rate": Ratio(("fallbacks",), denominator="fallbacks", minus=("failed_fallbacks",)),
    "rate_limit_rate": Ratio(("rate_limited",)),
    "server_error_rate": Ratio(("server_errors",)),
    "timeout_rate": Ratio(("timeouts",)),
    "content_filter_rate": Ratio(("input_blocked", "output_flagged")),
    "max_tokens_share": Ratio(("max_tokens_set",)),
    "timeout_set_share": Ratio(("timeout_set",)),
    "streamed_share": Ratio(("streamed_calls",)),
    "content_filter_share": Ratio(("filter_checked",)),
}
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
# Metric name -> (sketch, quantile).
QUANTILE_METRICS: dict[str, tuple[str, float]] = {
    f"{sketch}_{suffix}": (sketch, q)
    for sketch in ("latency", "ttft", "tokens_per_second")
    for suffix, q in QUANTILES.items()
}
SHARE_METRICS = ("finish_reason_share",)
METRICS: tuple[str, ...] = (*SUM_METRICS, *RATIO_METRICS, *SHARE_METRICS, *QUANTILE_METRICS)


class MetricsQueryError(ValueError):
    """A query that cannot be answered as asked; `parameter` names what to change."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass
class MetricsResult:
    interval: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)


def _ceil(moment: datetime, unit: str) -> datetime:
    floor = bucket_floor(moment, unit)
    return floor if floor == moment else floor + BUCKET_WIDTH[unit]


def interval_choose(*, start: datetime, end: datetime, users: bool = False, now: datetime | None = None) -> str:
    """A bucket size giving a readable number of points: minutes up to 6 hours (while minute
    rollups are kept), hours up to 14 days, days beyond; always days per user."""
    span = end - start
    if users:
        return "day"
    today = (now or timezone.now()).astimezone(UTC).date()
    if span <= timedelta(hours=6) and start >= minute_rows_from(today=today):
        return "minute"
    return "hour" if span <= timedelta(days=14) else "day"


@dataclass(frozen=True)
class _Segment:
    unit: str | None  # None: raw calls
    lo: datetime
    hi: datetime


class _Planner:
    """Covers [start, end) with the coarsest usable rows; see the module docstring."""

    def __init__(self, *, dirty: Sequence[datetime], kept_from: Mapping[str, datetime]) -> None:
        self.dirty = sorted(dirty)
        self.kept_from = kept_from
        self.segments: list[_Segment] = []

    def _usable(self, unit: str, bucket: datetime) -> bool:
        width = BUCKET_WIDTH[unit]
        if unit in self.kept_from and bucket < self.kept_from[unit]:
            return False
        index = bisect.bisect_left(self.dirty, bucket)
        return index == len(self.dirty) or self.dirty[index] >= bucket + width

    def _add(self, unit: str | None, lo: datetime, hi: datetime) -> None:
        last = self.segments[-1] if self.segments else None
        if last is not None and last.unit == unit and last.hi == lo:
            self.segments[-1] = _Segment(unit, last.lo, hi)
        else:
            self.segments.append(_Segment(unit, lo, hi))

    def cover(self, lo: datetime, hi: datetime, unit: str | None) -> None:
        if lo >= hi:
            return
        if unit is None:
            self._add(None, lo, hi)
            return
        first, last = _ceil(lo, unit), bucket_floor(hi, unit)
        if first >= last:
            self.cover(lo, hi, _FINER[unit])
            return
        self.cover(lo, first, _FINER[unit])
        bucket = first
        while bucket < last:
            following = bucket + BUCKET_WIDTH[unit]
            if self._usable(unit, bucket):
                self._add(unit, bucket, following)
            else:
                self.cover(bucket, following, _FINER[unit])
            bucket = following
        self.cover(last, hi, _FINER[unit])


def _dirty_minutes(cursor, *, project_id: int, start: datetime, end: datetime) -> list[datetime]:
    cursor.execute(
        """
        SELECT DISTINCT extract(epoch FROM minute)::int8 FROM calls_changedminute
        WHERE project_id = %(p)s AND minute >= %(lo)s AND minute < %(hi)s
        """,
        {"p": project_id, "lo": bucket_floor(start, "minute"), "hi": end},
    )
    return [datetime.fromtimestamp(row[0], UTC) for row in cursor.fetchall()]


@dataclass
class _Group:
    sums: list[Any]
    payloads: list[list[bytes]]
    rows: int  # stored rows merged into it: with one, its bins are already sorted
    # Per sketch, the keys at STORED_QUANTILES of the one hour or day row that is the whole
    # group (the planner never mixes such a row with others in one bucket), else None.
    stored: list[list[int] | None] | None = None


def _rollup_sql(*, table: str, label: str, group_by: Sequence[str], sketches: Sequence[str],
                filters: Mapping[str, Sequence[str]], mask: int | None, merge: bool, stored: bool) -> str:
    """Stored rows of `table` summed per (label, group_by); without `merge`, each row is its
    own group already (same bucket, same grouping) and is passed through as it is, with its
    precomputed quantile keys instead of its bins when `stored`."""
    columns = "".join(f", {name}" for name in group_by)
    conditions = "".join(f" AND {name} = ANY(%(f_{name})s)" for name in filters)
    if mask is not None:
        conditions += f" AND dims = {mask}"
    if merge:
        sums = ", ".join(f"sum({name}){'' if name in MONEY_MEASURES else '::int8'} AS {name}" for name in MEASURES)
        payloads = "".join(f", string_agg({sql_bins_payload(name)}, ''::bytea) AS {name}" for name in sketches)
        select, group = f"{sums}{payloads}, count(*) AS pieces", f" GROUP BY 1{columns}"
    else:
        payloads = "".join(
            f", {quantile_column(name) if stored else sql_bins_payload(name)} AS {name}" for name in sketches
        )
        select, group = f"{', '.join(MEASURES)}{payloads}, 1 AS pieces", ""
    return f"""
        SELECT {label} AS bucket{columns}, {select}
        FROM unnest(%(lo)s::timestamptz[], %(hi)s::timestamptz[]) AS r(lo, hi)
        CROSS JOIN LATERAL (
            SELECT * FROM {table} WHERE project_id = %(project)s AND bucket >= r.lo AND bucket < r.hi{conditions}
            OFFSET 0
        ) AS t{group}
    """


def _collect(*, connection, project_id: int, start: datetime, end: datetime, interval: str | None,
             group_by: Sequence[str], filters: Mapping[str, Sequence[str]], measures: Sequence[str],
             sketches: Sequence[str], today) -> dict[tuple, _Group]:
    """Sums of `measures` and sketch payloads per (bucket as epoch seconds, *group values)."""
    users = USER in group_by or USER in filters
    family = USER_FAMILY if users else DIMENSION_FAMILY
    # Binary results (a server-side-binding cursor: Django's client-side ones cannot): sketch
    # payloads arrive as bytes, not as hex text twice their size.
    cursor = psycopg.Cursor(connection.connection)
    cursor.format = psycopg.pq.Format.BINARY
    # Minute rows (and per-user hours) are kept for less time than the rest.
    kept_from = {"minute": minute_rows_from(today=today)}
    if users:
        kept_from["hour"] = user_hours_from(today=today)
    planner = _Planner(dirty=_dirty_minutes(cursor, project_id=project_id, start=start, end=end),
                       kept_from=kept_from)
    planner.cover(start, end, interval or "day")
    groups: dict[tuple, _Group] = {}
    params: dict[str, Any] = {"project": project_id, "start": start, **filter_params(filters)}
    constant_label = "%(start)s::timestamptz"
    for unit in (*INTERVALS, None):
        segments = [segment for segment in planner.segments if segment.unit == unit]
        if not segments:
            continue
        stored = False
        if unit is None:
            label = f"date_trunc('{interval}', c.start_time)" if interval else constant_label
            sql = raw_rows_sql(bucket=label, dimensions=group_by, sketches=sketches, filters=filters, payload=True)
        else:
            mask = None
            grouped_by = set(family.dimensions)
            if not users:
                mask = ALL if unit == "minute" else stored_mask_for({*group_by, *filters})
                grouped_by = set(dimensions_of(mask))
            label = f"date_trunc('{interval}', bucket)" if interval else constant_label
            merge = unit != interval or grouped_by != set(group_by)
            stored = bool(sketches) and not merge and unit != "minute"
            sql = _rollup_sql(table=family.tables[unit], label=label, group_by=group_by, sketches=sketches,
                              filters=filters, mask=mask, merge=merge, stored=stored)
        # Buckets as epoch seconds: parsing thousands of timestamps costs more than the query.
        pieces = "1" if unit is None else "pieces"
        columns = ", ".join(["extract(epoch FROM bucket)::int8", *group_by, *measures, *sketches, pieces])
        cursor.execute(f"SELECT {columns} FROM ({sql}) q",
                       {**params, "lo": [s.lo for s in segments], "hi": [s.hi for s in segments]})
        width, sums_end = 1 + len(group_by), 1 + len(group_by) + len(measures)
        for row in cursor.fetchall():
            key = row[:width]
            group = groups.get(key)
            if group is None:
                if stored:
                    groups[key] = _Group(sums=list(row[width:sums_end]), payloads=[], rows=1,
                                         stored=list(row[sums_end:-1]))
                else:
                    groups[key] = _Group(sums=list(row[width:sums_end]), rows=row[-1],
                                         payloads=[[p] if p else [] for p in row[sums_end:-1]])
                continue
            group.sums = [a + (b or 0) for a, b in zip(group.sums, row[width:sums_end])]
            for pieces_of_sketch, payload in zip(group.payloads, row[sums_end:-1]):
                if payload:
                    pieces_of_sketch.append(payload)
            group.rows += row[-1]
    return groups


def _window(*, start: datetime, end: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The part of [start, end) that can hold data: nothing is kept longer than the rollups,
    nor accepted more than minutes ahead (a day leaves room). Also keeps bucket arithmetic
    clear of the ends of the calendar."""
    return max(start, rollups_from(today=now.date())), min(end, now + timedelta(days=1))


def _validate(*, start: datetime, end: datetime, interval: str | None, metrics: Sequence[str],
              group_by: Sequence[str], filters: Mapping[str, Sequence[str]], now: datetime) -> None:
    today = now.date()
    if end <= start:
        raise MetricsQueryError("end", "end must be after start.")
    for name in metrics:
        if name not in METRICS:
            raise MetricsQueryError("metrics", f"Unknown metric {name!r}; known metrics: {', '.join(METRICS)}.")
    for name in (*group_by, *filters):
        if name not in GROUPABLE:
            raise MetricsQueryError("group_by", f"Unknown dimension {name!r}; known: {', '.join(GROUPABLE)}.")
    if interval is not None:
        if interval not in INTERVALS:
            raise MetricsQueryError("interval", f"Unknown interval {interval!r}; use minute, hour or day.")
        if interval == "minute" and start < minute_rows_from(today=today):
            raise MetricsQueryError("interval", "Minute buckets are kept for the last few days only "
                                                "(ROLLUP_MINUTE_RETENTION_DAYS); use interval=hour for older data.")
        lo, hi = _window(start=start, end=end, now=now)
        buckets = (_ceil(hi, interval) - bucket_floor(lo, interval)) / BUCKET_WIDTH[interval] if hi > lo else 0
        if buckets > MAX_BUCKETS:
            raise MetricsQueryError("interval", f"{buckets:,.0f} {interval}s is more than {MAX_BUCKETS:,} buckets; "
                                                "use a larger interval or a shorter window.")
    if USER in group_by or USER in filters:
        others = [name for name in (*group_by, *filters) if name != USER]
        if others:
            raise MetricsQueryError("group_by", f"user_id cannot be combined with other dimensions ({others[0]}).")
        for name in metrics:
            if name in QUANTILE_METRICS or name in SHARE_METRICS:
                raise MetricsQueryError("metrics", f"{name} is not available per user.")
        if interval in ("minute", "hour"):
            raise MetricsQueryError("interval", "Per-user metrics come by day or for the whole window.")


def _row(*, key: tuple, group: _Group, interval: str | None, group_by: Sequence[str], metrics: Sequence[str],
         measures: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    if interval:
        row["bucket"] = datetime.fromtimestamp(key[0], UTC)
    for name, value in zip(group_by, key[1:]):
        row[name] = value or None
    sums = dict(zip(measures, group.sums))
    for name in metrics:
        if name in SUM_METRICS:
            value = sums[SUM_METRICS[name]]
            row[name] = Decimal(value) if SUM_METRICS[name] in MONEY_MEASURES else int(value)
        elif name in RATIO_METRICS:
            row[name] = RATIO_METRICS[name].of(sums)
    return row


def metrics_query(
    *,
    project: Project,
    start: datetime,
    end: datetime,
    metrics: Sequence[str],
    interval: str | None = None,
    group_by: Sequence[str] = (),
    filters: Mapping[str, Sequence[str]] | None = None,
    order_by: str | None = None,
    limit: int | None = None,
    now: datetime | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> MetricsResult:
    """`metrics` of `project`'s model calls that started in [start, end), per `interval`
    bucket (None: the whole window) and per value of the `group_by` dimensions, keeping only
    calls whose dimensions take the listed values in `filters` ('' for none). Rows come by
    bucket, then group, unless `order_by` names a metric ('-' first for descending)."""
    filters = dict(filters or {})
    group_by = list(dict.fromkeys(group_by))
    now = (now or timezone.now()).astimezone(UTC)
    today = now.date()
    _validate(start=start, end=end, interval=interval, metrics=metrics, group_by=group_by, filters=filters, now=now)
    descending = bool(order_by and order_by.startswith("-"))
    order_metric = order_by.lstrip("-") if order_by else None
    if order_metric is not None and order_metric not in metrics:
        raise MetricsQueryError("order_by", f"order_by must name one of the requested metrics, not {order_by!r}.")
    start, end = _window(start=start, end=end, now=now)
    if end <= start:
        return MetricsResult(interval=interval)
    sketch_qs: dict[str, list[tuple[str, float]]] = {}
    for name in metrics:
        if name in QUANTILE_METRICS:
            sketch, q = QUANTILE_METRICS[name]
            sketch_qs.setdefault(sketch, []).append((name, q))

    measures = list(dict.fromkeys(
        [SUM_METRICS[name] for name in metrics if name in SUM_METRICS]
        + [measure for name in metrics if name in RATIO_METRICS for measure in RATIO_METRICS[name].measures]
        + (["calls"] if "finish_reason_share" in metrics else [])
    ))
    connection = connections[using]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=using):
        connection.ensure_connection()
        if outermost:  # one snapshot for the marks, the rollups and the raw calls
            connection.connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # Merging thousands of payloads in one aggregate: in memory, not temporary files.
            connection.connection.execute("SET LOCAL work_mem = '64MB'")
        common = {"connection": connection, "project_id": project.pk, "start": start, "end": end,
                  "interval": interval, "filters": filters, "today": today}
        groups = _collect(group_by=group_by, measures=measures, sketches=list(sketch_qs), **common)
        shares = None
        if "finish_reason_share" in metrics:
            shares = _collect(group_by=[*group_by, "finish_reason"], measures=["calls"], sketches=[], **common)

    rows = {key: _row(key=key, group=group, interval=interval, group_by=group_by, metrics=metrics,
                      measures=measures) for key, group in groups.items()}
    keys = list(groups)
    merged = [key for key in keys if groups[key].stored is None]
    presorted = [groups[key].rows == 1 for key in merged]
    values_of_keys: dict[int, float] = {}
    for index, (sketch, wanted) in enumerate(sketch_qs.items()):
        payloads = [b"".join(groups[key].payloads[index]) for key in merged]
        answers = quantiles(payloads, [q for _, q in wanted], presorted=presorted)
        for key, values in zip(merged, answers):
            for (name, _), value in zip(wanted, values):
                rows[key][name] = value
        positions = [STORED_QUANTILES.index(q) for _, q in wanted]
        for key in keys:
            stored = groups[key].stored
            if stored is None:
                continue
            bins = stored[index]
            for (name, _), position in zip(wanted, positions):
                if bins is None:
                    rows[key][name] = None
                    continue
                if bins[position] not in values_of_keys:
                    values_of_keys[bins[position]] = key_value(bins[position])
                rows[key][name] = values_of_keys[bins[position]]
    if shares is not None:
        for key in keys:
            rows[key]["finish_reason_share"] = {}
        for key, group in shares.items():
            outer, reason = key[:-1], key[-1]
            total = groups[outer].sums[measures.index("calls")] if outer in groups else 0
            if total:
                # Keyed by reason; '' for calls without one (errors, embeddings).
                rows[outer]["finish_reason_share"][reason] = int(group.sums[0]) / int(total)

    ordered = [rows[key] for key in sorted(keys)]
    if order_metric is not None:
        present = [row for row in ordered if row.get(order_metric) is not None]
        missing = [row for row in ordered if row.get(order_metric) is None]
        ordered = sorted(present, key=lambda row: row[order_metric], reverse=descending) + missing
    return MetricsResult(interval=interval, rows=ordered[:limit] if limit else ordered)
