"""Rollup tables: what dashboards and alerts read instead of raw calls.

Two families, each at minute, hour and day granularity:

* dimension rollups (`RollupMinute`, `RollupHour`, `RollupDay`): model calls per bucket and
  per combination of model, provider, feature, environment, prompt name and version, status
  and finish_reason, with counts, token and cost sums and three percentile sketches;
* user rollups (`UserMinute`, `UserHour`, `UserDay`): the same sums per end user, apart
  because users number in the thousands and would multiply every dimension row.

Rows are never incremented: a job recomputes whole buckets (services.py). `dims` says which
dimensions a row is grouped by (a bit mask, see dimensions.py): minute rows are always
grouped by all of them; hour and day rows also exist per single dimension and in total, so
the common panels ("P99 by model per hour") read one row per point instead of merging.
A dimension a row is not grouped by, or a call did not have, is stored as ''. Dimension
columns use the "C" collation: the job sorts by them constantly and never needs a human order.

Sketch columns hold DDSketch bins (see sketches.py) as a bigint array, one element per
non-empty bin, in no particular order: (key << 32) | count. Minute tables are partitioned by day (dropped whole
after ROLLUP_MINUTE_RETENTION_DAYS); the others are plain tables trimmed by age (per-user
hours after RETENTION_DAYS, the rest after ROLLUP_RETENTION_DAYS).
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

from observatory.calls.models import COST_PLACES
from observatory.metrics.dimensions import DIMENSIONS
from observatory.tenancy.models import Project

# Sums of NUMERIC(20, 12) costs: room for 10^18 dollars, exact to the cent of a micro-dollar.
SUM_COST_DIGITS = 30


class Measures(models.Model):
    """Sums every rollup row carries."""

    project = models.ForeignKey(
        Project, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    bucket = models.DateTimeField()
    calls = models.BigIntegerField()
    errors = models.BigIntegerField()
    input_tokens = models.BigIntegerField()
    cached_input_tokens = models.BigIntegerField()
    cache_write_tokens = models.BigIntegerField()
    output_tokens = models.BigIntegerField()
    reasoning_tokens = models.BigIntegerField()
    total_tokens = models.BigIntegerField()
    cost = models.DecimalField(max_digits=SUM_COST_DIGITS, decimal_places=COST_PLACES)
    # Model calls without a price (unknown model): their cost is missing, never counted as 0.
    unpriced_calls = models.BigIntegerField()
    # Safety-net signals (signals.py says what each counts). Rows rolled up before the
    # signals existed have 0: their calls carried none.
    cache_hits = models.BigIntegerField(default=0)
    semantic_cache_hits = models.BigIntegerField(default=0)
    cache_saved_cost = models.DecimalField(max_digits=SUM_COST_DIGITS, decimal_places=COST_PLACES, default=0)
    retries = models.BigIntegerField(default=0)
    fallbacks = models.BigIntegerField(default=0)
    failed_fallbacks = models.BigIntegerField(default=0)
    rate_limited = models.BigIntegerField(default=0)
    server_errors = models.BigIntegerField(default=0)
    timeouts = models.BigIntegerField(default=0)
    input_blocked = models.BigIntegerField(default=0)
    output_flagged = models.BigIntegerField(default=0)
    filter_checked = models.BigIntegerField(default=0)
    max_tokens_set = models.BigIntegerField(default=0)
    timeout_set = models.BigIntegerField(default=0)
    streamed_calls = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class DimensionRollup(Measures):
    dims = models.SmallIntegerField()
    model = models.TextField(db_collation="C")
    provider = models.TextField(db_collation="C")
    feature = models.TextField(db_collation="C")
    environment = models.TextField(db_collation="C")
    prompt_name = models.TextField(db_collation="C")
    prompt_version = models.TextField(db_collation="C")
    status = models.TextField(db_collation="C")
    finish_reason = models.TextField(db_collation="C")
    latency = ArrayField(models.BigIntegerField(), null=True)
    ttft = ArrayField(models.BigIntegerField(), null=True)
    tokens_per_second = ArrayField(models.BigIntegerField(), null=True)

    class Meta:
        abstract = True


DIMENSION_KEY = ("project", "dims", "bucket", *DIMENSIONS)


class RollupMinute(DimensionRollup):
    pk = models.CompositePrimaryKey(*DIMENSION_KEY)

    class Meta:
        db_table = "metrics_rollup_minute"


class StoredQuantiles(models.Model):
    """Each sketch's bin keys at P50, P90, P95 and P99 (sketches.STORED_QUANTILES), so a read
    that takes one row per point (by model per hour, ...) fetches four numbers, not the bins."""

    latency_quantiles = ArrayField(models.IntegerField(), null=True)
    ttft_quantiles = ArrayField(models.IntegerField(), null=True)
    tokens_per_second_quantiles = ArrayField(models.IntegerField(), null=True)

    class Meta:
        abstract = True


class RollupHour(DimensionRollup, StoredQuantiles):
    pk = models.CompositePrimaryKey(*DIMENSION_KEY)

    class Meta:
        db_table = "metrics_rollup_hour"


class RollupDay(DimensionRollup, StoredQuantiles):
    pk = models.CompositePrimaryKey(*DIMENSION_KEY)

    class Meta:
        db_table = "metrics_rollup_day"


class UserRollup(Measures):
    user_id = models.TextField(db_collation="C")

    class Meta:
        abstract = True


class UserMinute(UserRollup):
    pk = models.CompositePrimaryKey("project", "bucket", "user_id")

    class Meta:
        db_table = "metrics_user_minute"


class UserHour(UserRollup):
    pk = models.CompositePrimaryKey("project", "bucket", "user_id")

    class Meta:
        db_table = "metrics_user_hour"


class UserDay(UserRollup):
    pk = models.CompositePrimaryKey("project", "bucket", "user_id")

    class Meta:
        db_table = "metrics_user_day"
