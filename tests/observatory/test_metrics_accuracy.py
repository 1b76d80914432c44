"""Percentiles within 1% of PostgreSQL's exact percentile_cont; sums exactly the raw sums.

Each distribution has 20,001 calls so that q * (n - 1) is a whole rank for every tested q:
percentile_cont then needs no interpolation and the comparison measures the sketch alone.
The window starts mid-minute and spans hours, so answers merge hour rows, minute rows and
raw calls.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from observatory.calls.services import calls_write
from observatory.metrics.selectors import metrics_query
from tests.metrics_helpers import MODEL_KINDS_SQL, raw_totals, roll_up
from tests.records import record

N = 20_001
QS = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def uniform(rng):
    return rng.uniform(50, 5000)


def lognormal(rng):
    return rng.lognormvariate(6.7, 1.0)


def bimodal(rng):
    # 70 % fast answers, 30 % slow ones: no tested quantile falls in the gap between them.
    return max(1.0, rng.gauss(200, 25) if rng.random() < 0.7 else rng.gauss(4000, 400))


def write_distribution(project, draw, *, seed: int, end: datetime) -> datetime:
    rng = random.Random(seed)
    first = end - timedelta(hours=3, minutes=17, seconds=23)
    records = []
    for index in range(N):
        latency = draw(rng)
        ttft = latency * rng.uniform(0.05, 0.5)
        records.append(record(
            start_time=first + timedelta(seconds=index * 11700 / N),
            latency_ms=latency, time_to_first_token_ms=ttft, output_tokens=rng.randint(1, 900),
            input_tokens=rng.randint(1, 5000), model=rng.choice(["gpt-4o-mini", "gpt-4o", "my-own-model"]),
        ))
    for offset in range(0, N, 5000):
        calls_write(project=project, records=records[offset:offset + 5000])
    return first


def exact_percentiles(project, expression: str, start, end) -> dict[str, float]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join(f"percentile_cont({q}) WITHIN GROUP (ORDER BY {expression})" for q in QS.values())
            + f" FROM calls_call WHERE project_id = %s AND {MODEL_KINDS_SQL} AND start_time >= %s AND start_time < %s"
            f" AND ({expression}) IS NOT NULL",
            [project.pk, start, end],
        )
        return dict(zip(QS, cursor.fetchone()))


def assert_within_one_percent(estimated: dict, exact: dict) -> None:
    for name, value in exact.items():
        assert abs(estimated[name] - value) <= 0.01 * value * (1 + 1e-9), (name, estimated[name], value)


@pytest.mark.parametrize(("draw", "seed"), [(uniform, 1), (lognormal, 2), (bimodal, 3)])
def test_latency_percentiles_within_one_percent_of_percentile_cont(project, draw, seed):
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    first = write_distribution(project, draw, seed=seed, end=end)
    roll_up(project)
    start = first - timedelta(seconds=17)
    result = metrics_query(project=project, start=start, end=end, metrics=[f"latency_{q}" for q in QS])
    [row] = result.rows
    assert_within_one_percent({q: row[f"latency_{q}"] for q in QS}, exact_percentiles(project, "latency_ms", start, end))


def test_ttft_and_tokens_per_second_percentiles_within_one_percent(project):
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    first = write_distribution(project, lognormal, seed=4, end=end)
    roll_up(project)
    metrics = [f"{sketch}_{q}" for sketch in ("ttft", "tokens_per_second") for q in QS]
    [row] = metrics_query(project=project, start=first, end=end, metrics=metrics).rows
    assert_within_one_percent({q: row[f"ttft_{q}"] for q in QS},
                              exact_percentiles(project, "time_to_first_token_ms", first, end))
    speed = "output_tokens * 1000.0::float8 / (latency_ms - time_to_first_token_ms)"
    assert_within_one_percent({q: row[f"tokens_per_second_{q}"] for q in QS},
                              exact_percentiles(project, speed, first, end))


def test_token_and_cost_sums_equal_raw_sums_exactly(project):
    end = datetime.now(UTC).replace(microsecond=0)
    first = write_distribution(project, uniform, seed=5, end=end)
    calls_write(project=project, records=[record(start_time=first + timedelta(minutes=30), cost=Decimal("0.000000000007")),
                                          record(start_time=end - timedelta(seconds=3), status="error")])
    roll_up(project)
    start = first + timedelta(minutes=7, seconds=31)  # mid-minute, mid-hour
    metrics = ["count", "errors", "input_tokens", "output_tokens", "total_tokens", "cost", "unpriced_count"]
    [total] = metrics_query(project=project, start=start, end=end, metrics=metrics).rows
    assert {name: total[name] for name in metrics} == raw_totals(project, start, end)
    assert isinstance(total["cost"], Decimal)
    assert total["unpriced_count"] > 0  # my-own-model has no price and is counted, not summed as 0

    by_hour = metrics_query(project=project, start=start, end=end, metrics=metrics, interval="hour").rows
    first_hour = start.replace(minute=0, second=0)
    assert len(by_hour) == -(-(end - first_hour) // timedelta(hours=1))  # every hour touched, partial ones too
    for row in by_hour:
        lower = max(start, row["bucket"])
        upper = min(end, row["bucket"] + timedelta(hours=1))
        assert {name: row[name] for name in metrics} == raw_totals(project, lower, upper)
    by_model = metrics_query(project=project, start=start, end=end, metrics=["cost"], group_by=["model"]).rows
    assert sum(row["cost"] for row in by_model) == total["cost"]


def test_quantiles_stored_with_hour_rows_equal_those_merged_from_their_bins(project):
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    write_distribution(project, bimodal, seed=6, end=end)
    roll_up(project)
    metrics = [f"{sketch}_{q}" for sketch in ("latency", "ttft", "tokens_per_second") for q in QS]
    start = end - timedelta(hours=3)
    # One hour row per point: its precomputed quantiles.
    by_hour = metrics_query(project=project, start=start, end=end, metrics=metrics, interval="hour",
                            group_by=["model"]).rows
    assert len(by_hour) == 9
    for row in by_hour:
        # The same hour and model as a whole window: bins merged by numpy.
        [merged] = metrics_query(project=project, start=row["bucket"], end=row["bucket"] + timedelta(hours=1),
                                 metrics=metrics, filters={"model": [row["model"]]}).rows
        assert {name: row[name] for name in metrics} == merged
