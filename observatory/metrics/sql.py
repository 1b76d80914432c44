"""SQL for rollups, shared by the job (services.py) and the reads (selectors.py).

Two building blocks:

* `raw_rows_sql`: model calls in a set of time ranges, grouped by a bucket and any
  dimensions, with sums and sketch bins (keys computed in SQL, see sketches.py);
* `regroup_sql`: rows of that shape re-grouped into coarser buckets and, with grouping sets,
  into several groupings at once, merging sketch bins by key.

Rows of either have the columns bucket, [dims,] <dimensions>, <MEASURES>, <sketches>.
Time ranges are passed as two arrays, %(lo)s and %(hi)s, so one statement covers any set of
minutes (a contiguous backlog or scattered late ones). Each range is read by its own lateral
index scan (OFFSET 0 keeps the planner from flattening it into a join that reads every
partition once and filters).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from observatory.calls.models import MODEL_CALL_KINDS
from observatory.metrics.dimensions import ALL, DIMENSIONS
from observatory.metrics.signals import SIGNAL_COLUMNS, SIGNAL_MEASURES
from observatory.metrics.sketches import COUNT_BITS, COUNT_MASK, sql_bins_payload, sql_key, sql_quantile_keys

MEASURES: tuple[str, ...] = (
    "calls",
    "errors",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost",
    "unpriced_calls",
    *SIGNAL_MEASURES,
)
TOKEN_MEASURES = MEASURES[2:8]
# Measures in USD (NUMERIC); the rest are counts.
MONEY_MEASURES = frozenset({"cost", "cache_saved_cost"})

_RAW_MEASURES = {
    "calls": "count(*)",
    "errors": "count(*) FILTER (WHERE status = 'error')",
    **{name: f"coalesce(sum({name}), 0)::int8" for name in TOKEN_MEASURES},
    "cost": "coalesce(sum(cost), 0)",
    "unpriced_calls": "count(*) FILTER (WHERE cost IS NULL)",
    **SIGNAL_MEASURES,
}
_SUMMED_MEASURES = {name: f"sum({name})" if name in MONEY_MEASURES else f"sum({name})::int8" for name in MEASURES}

# The value each sketch summarises, per call. Tokens per second is the decoding speed: output
# tokens over the time after the first token (the whole latency when TTFT is unknown), for
# successful calls that produced output.
SKETCH_VALUES: dict[str, str] = {
    "latency": "c.latency_ms",
    "ttft": "c.time_to_first_token_ms",
    "tokens_per_second": (
        "CASE WHEN c.status = 'ok' AND c.output_tokens > 0 "
        "AND c.latency_ms - coalesce(c.time_to_first_token_ms, 0) > 0 "
        "THEN c.output_tokens * 1000.0::float8 / (c.latency_ms - coalesce(c.time_to_first_token_ms, 0)) END"
    ),
}
SKETCHES: tuple[str, ...] = tuple(SKETCH_VALUES)
_MODEL_KINDS = ", ".join(f"'{kind}'" for kind in sorted(MODEL_CALL_KINDS))
# Every dimension a raw row can be grouped or filtered by; '' stands for "none".
RAW_DIMENSIONS = (*DIMENSIONS, "user_id")


# Dimensions are compared byte-wise, as the rollup tables store them: sorting by them is then
# a memcmp, not a locale-aware comparison.
_C = '"C"'


def _join(columns: Sequence[str], prefix: str = "") -> str:
    return ", ".join(prefix + column for column in columns)


def filters_sql(filters: Mapping[str, Sequence[str]]) -> str:
    """AND clauses on raw calls for {dimension: allowed values} ('' matches none), the values
    passed as %(f_<dimension>)s."""
    return "".join(f" AND coalesce(c.{name}, '') = ANY(%(f_{name})s)" for name in filters)


def filter_params(filters: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    return {f"f_{name}": list(values) for name, values in filters.items()}


def _sketch_aggregates(sketches: Sequence[str]) -> str:
    # Not array_agg(... ORDER BY k): that sorts every bin by all the dimensions before its key,
    # the most expensive step of a batch. _sorted_sketches sorts each array on its own.
    return ", ".join(
        f"array_agg((k << {COUNT_BITS}) | n) FILTER (WHERE i = {index}) AS {name}"
        for index, name in enumerate(sketches)
    )


def _sorted_sketches(sketches: Sequence[str], payload: bool = False) -> str:
    """Each row's bins sorted by key (the key is in the high bits, so by value): a read that
    takes one row per point then needs no sort at all (sketches.quantiles)."""
    parts = []
    for name in sketches:
        array = f"CASE WHEN k.{name} IS NOT NULL THEN ARRAY(SELECT e FROM unnest(k.{name}) AS e ORDER BY e) END"
        parts.append(f"{sql_bins_payload(array) if payload else array} AS {name}")
    return ", ".join(parts)


def raw_rows_sql(
    *,
    bucket: str,
    dimensions: Sequence[str],
    sketches: Sequence[str] = SKETCHES,
    filters: Mapping[str, Sequence[str]] | None = None,
    payload: bool = False,
) -> str:
    """Model calls of %(project)s in the ranges %(lo)s/%(hi)s, grouped by `bucket` (SQL over
    c.start_time) and `dimensions`. With `payload`, sketches come as bytes for sketches.py."""
    filters = filters or {}
    group = ["bucket", *dimensions]
    keys = ", ".join(f"{sql_key(SKETCH_VALUES[name])} AS k{index}" for index, name in enumerate(sketches))
    sql = f"""
    WITH src AS MATERIALIZED (
        SELECT c.* FROM unnest(%(lo)s::timestamptz[], %(hi)s::timestamptz[]) AS r(lo, hi)
        CROSS JOIN LATERAL (
            SELECT {bucket} AS bucket,
                   {", ".join(f"coalesce(c.{name}, '') COLLATE {_C} AS {name}" for name in RAW_DIMENSIONS)},
                   {_join(TOKEN_MEASURES, "c.")}, c.cost, {_join(SIGNAL_COLUMNS, "c.")}{", " + keys if sketches else ""}
            FROM calls_call c
            WHERE c.project_id = %(project)s AND c.start_time >= r.lo AND c.start_time < r.hi
              AND c.kind IN ({_MODEL_KINDS}){filters_sql(filters)}
            OFFSET 0
        ) AS c
    ), scalars AS (
        SELECT {_join(group)}, {", ".join(f"{expression} AS {name}" for name, expression in _RAW_MEASURES.items())}
        FROM src GROUP BY {_join(group)}
    )"""
    if not sketches:
        return sql + f" SELECT {_join(group)}, {_join(MEASURES)} FROM scalars"
    values = ", ".join(f"({index}, k{index})" for index in range(len(sketches)))
    return sql + f""", bins AS (
        SELECT {_join(group)}, b.i, b.k, count(*)::int8 AS n
        FROM src CROSS JOIN LATERAL (VALUES {values}) AS b(i, k)
        WHERE b.k IS NOT NULL
        GROUP BY {_join(group)}, b.i, b.k
    ), sketched AS (
        SELECT {_join(group)}, {_sketch_aggregates(sketches)} FROM bins GROUP BY {_join(group)}
    )
    SELECT {_join(group, "s.")}, {_join(MEASURES, "s.")}, {_sorted_sketches(sketches, payload)}
    FROM scalars s LEFT JOIN sketched k USING ({_join(group)})
    """


def quantile_column(sketch: str) -> str:
    return f"{sketch}_quantiles"


def regroup_sql(
    *,
    source: str,
    bucket: str,
    dimensions: Sequence[str],
    groupings: Sequence[Sequence[str]] | None = None,
    sketches: Sequence[str] = SKETCHES,
) -> str:
    """Rows of `source` (bucket, `dimensions`, MEASURES, `sketches`) summed into `bucket`
    (SQL over the source's bucket). With `groupings`, one set of rows per grouping, each with
    its `dims` mask and '' in the dimensions it is not grouped by, and each sketch's keys at
    STORED_QUANTILES."""
    if groupings is None:
        by = _join(dimensions)
        head = _join(dimensions)
        group = ["bucket", *dimensions]
    else:
        by = "GROUPING SETS ({})".format(", ".join(f"({_join(grouping)})" for grouping in groupings))
        head = f"{ALL} # GROUPING({_join(dimensions)}) AS dims, " + ", ".join(
            f"coalesce({name}, '') AS {name}" for name in dimensions
        )
        group = ["bucket", "dims", *dimensions]
    sql = f"""
    WITH src AS MATERIALIZED ({source}),
    scalars AS (
        SELECT {bucket} AS bucket, {head}, {", ".join(f"{expression} AS {name}" for name, expression in _SUMMED_MEASURES.items())}
        FROM src GROUP BY {bucket}, {by}
    )"""
    if not sketches:
        return sql + f" SELECT {_join(group)}, {_join(MEASURES)} FROM scalars"
    unnested = " UNION ALL ".join(
        f"SELECT {index} AS i, e FROM unnest(src.{name}) AS e" for index, name in enumerate(sketches)
    )
    return sql + f""", bins AS (
        SELECT {bucket} AS bucket, {head}, b.i, b.e >> {COUNT_BITS} AS k, sum(b.e & {COUNT_MASK})::int8 AS n
        FROM src CROSS JOIN LATERAL ({unnested}) AS b
        GROUP BY {bucket}, b.i, b.e >> {COUNT_BITS}, {by}
    ), sketched AS (
        SELECT {_join(group)}, {_sketch_aggregates(sketches)} FROM bins GROUP BY {_join(group)}
    )
    SELECT {_join(group, "s.")}, {_join(MEASURES, "s.")}, {_sorted_sketches(sketches)},
           {", ".join(f"{sql_quantile_keys('k.' + name)} AS {quantile_column(name)}" for name in sketches)}
    FROM scalars s LEFT JOIN sketched k USING ({_join(group)})
    """
