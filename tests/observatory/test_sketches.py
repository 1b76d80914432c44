"""The sketch bins PostgreSQL computes are the ddsketch package's, and merging them with
numpy answers exactly what a DDSketch holding the same values answers."""

import math
import random

import pytest
from ddsketch import DDSketch
from django.db import connection

from observatory.metrics.sketches import MAPPING, ZERO_KEY, quantiles, sql_bins_payload, sql_key


def database_keys(values):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql_key('v')} FROM unnest(%s::float8[]) WITH ORDINALITY AS t(v, i) ORDER BY i",
                       [values])
        return [row[0] for row in cursor.fetchall()]


def payload(values, ordered=False):
    """Bins of `values` built by SQL exactly as rollups store and read them."""
    order = " ORDER BY k" if ordered else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {sql_bins_payload(f'array_agg((k << 32) | n{order})')} FROM (
                    SELECT {sql_key('v')} AS k, count(*)::int8 AS n FROM unnest(%s::float8[]) AS t(v) GROUP BY 1
                ) bins""",
            [values],
        )
        return bytes(cursor.fetchone()[0] or b"")


def test_database_maps_values_to_the_packages_bin_keys(db):
    rng = random.Random(7)
    values = [rng.lognormvariate(5, 3) for _ in range(5000)] + [1.0, 1000.0, 0.001, 1e-9, 123456.789]
    # Exact bin boundaries are where floating point disagreements would show first.
    values += [MAPPING.gamma ** k for k in range(-50, 400, 7)]
    assert database_keys(values) == [MAPPING.key(v) for v in values]


def test_zero_and_tiny_values_rank_below_every_bin(db):
    assert database_keys([0.0, -1.0, None]) == [ZERO_KEY, ZERO_KEY, None]


def test_merged_bins_answer_what_a_ddsketch_answers(db):
    rng = random.Random(11)
    groups = [
        [rng.uniform(1, 100) for _ in range(300)],
        [rng.lognormvariate(6, 1) for _ in range(2000)] + [0.0] * 30,
        [42.0],
        [],
    ]
    qs = [0.0, 0.25, 0.5, 0.9, 0.99, 1.0]
    # Each group's bins arrive from two "rows", as when rollups are merged.
    payloads = [payload(g[: len(g) // 2]) + payload(g[len(g) // 2:]) if g else None for g in groups]
    answers = quantiles(payloads, qs)
    for values, answer in zip(groups, answers):
        sketch = DDSketch(relative_accuracy=0.01)
        for value in values:
            sketch.add(value)
        expected = [sketch.get_quantile_value(q) for q in qs] if values else [None] * len(qs)
        for got, want in zip(answer, expected):
            assert (got is None and want is None) or math.isclose(got, want, rel_tol=1e-12), (got, want)


def test_presorted_rows_and_many_unsorted_groups_give_the_same_answers(db):
    rng = random.Random(5)
    groups = [[rng.lognormvariate(rng.uniform(2, 8), rng.uniform(0.2, 2)) for _ in range(rng.randint(1, 200))]
              for _ in range(100)]
    qs = [0.5, 0.9, 0.99]
    presorted = quantiles([payload(g, ordered=True) for g in groups], qs, presorted=[True] * len(groups))
    # More than 64 unsorted groups take the one-sort-for-all path.
    merged = quantiles([payload(g[::2]) + payload(g[1::2]) for g in groups], qs)
    assert presorted == merged
    for values, answer in zip(groups, presorted):
        sketch = DDSketch(relative_accuracy=0.01)
        for value in values:
            sketch.add(value)
        assert answer == pytest.approx([sketch.get_quantile_value(q) for q in qs], rel=1e-12)
