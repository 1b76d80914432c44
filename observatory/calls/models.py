"""The call store: one row per LLM call or span, its content, trace summaries and scores.

`Call` and `CallContent` are range-partitioned by start_time in PostgreSQL (one partition
per UTC day, see partitions.py). Django cannot create partitioned tables, so their DDL lives
in migration 0001 and the models are unmanaged. In the database the identity of a call is
(project_id, trace_id, span_id, start_time): unique keys of a partitioned table must contain
the partition key, and a client retry repeats all four, which is what makes ingest
idempotent. `id` is a sequence number for keyset pagination and for joining content.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Extract

from observatory.tenancy.models import Project

# Money is NUMERIC end to end: 12 decimal places hold a single token at $0.000001/M.
COST_DIGITS = 20
COST_PLACES = 12


class CallKind(models.TextChoices):
    GENERATION = "generation"
    EMBEDDING = "embedding"
    SPAN = "span"
    EVENT = "event"
    TOOL = "tool"
    RETRIEVER = "retriever"
    AGENT = "agent"
    CHAIN = "chain"
    GUARDRAIL = "guardrail"
    EVALUATOR = "evaluator"


# Kinds that are calls to a model: they carry tokens and a price.
MODEL_CALL_KINDS = frozenset({CallKind.GENERATION, CallKind.EMBEDDING})


class CallStatus(models.TextChoices):
    OK = "ok"
    ERROR = "error"


class CostSource(models.TextChoices):
    CLIENT = "client", "Sent by the client"
    OVERRIDE = "override", "Project price override"
    CATALOG = "catalog", "genai-prices catalogue"
    UNKNOWN = "unknown", "Model not priced"
    CACHE = "cache", "Served from a cache"
    NONE = "none", "Not a model call"


class Call(models.Model):
    id = models.BigIntegerField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    trace_id = models.TextField()
    span_id = models.TextField()
    parent_span_id = models.TextField(null=True)
    name = models.TextField(default="")
    kind = models.TextField(choices=CallKind.choices)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField(null=True)
    latency_ms = models.FloatField(null=True)
    time_to_first_token_ms = models.FloatField(null=True)
    provider = models.TextField(null=True)
    model = models.TextField(null=True)
    input_tokens = models.IntegerField(default=0)
    cached_input_tokens = models.IntegerField(default=0)
    cache_write_tokens = models.IntegerField(default=0)
    output_tokens = models.IntegerField(default=0)
    reasoning_tokens = models.IntegerField(default=0)
    total_tokens = models.IntegerField(default=0)
    cost = models.DecimalField(max_digits=COST_DIGITS, decimal_places=COST_PLACES, null=True)
    cost_source = models.TextField(choices=CostSource.choices)
    finish_reason = models.TextField(null=True)
    status = models.TextField(choices=CallStatus.choices, default=CallStatus.OK)
    error_type = models.TextField(null=True)
    error_message = models.TextField(null=True)
    user_id = models.TextField(null=True)
    session_id = models.TextField(null=True)
    environment = models.TextField(null=True)
    release = models.TextField(null=True)
    feature = models.TextField(null=True)
    prompt_name = models.TextField(null=True)
    prompt_version = models.TextField(null=True)
    tags = ArrayField(models.TextField(), default=list)
    metadata = models.JSONField(default=dict)
    # Signals about the safety nets around the call (records.CallRecord says what each means).
    cache_hit = models.BooleanField(null=True)
    cache_kind = models.TextField(null=True)
    cache_saved_cost = models.DecimalField(max_digits=COST_DIGITS, decimal_places=COST_PLACES, null=True)
    attempt = models.SmallIntegerField(null=True)
    retry_of = models.TextField(null=True)
    fallback_from_provider = models.TextField(null=True)
    fallback_from_model = models.TextField(null=True)
    http_status = models.SmallIntegerField(null=True)
    timeout_ms = models.FloatField(null=True)
    max_tokens = models.IntegerField(null=True)
    streamed = models.BooleanField(null=True)
    content_filter = models.TextField(null=True)
    input_hash = models.BigIntegerField(null=True)
    # When the row was committed; rollups use it to find late arrivals.
    ingested_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "calls_call"

    def __str__(self) -> str:
        return f"{self.kind} {self.name or self.model} in trace {self.trace_id}"


class CallContent(models.Model):
    """Prompt, completion and large metadata of a call, kept apart so the call row stays narrow
    and so content can be withheld (redaction, roles) without touching analytics."""

    call_id = models.BigIntegerField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    start_time = models.DateTimeField()
    input = models.JSONField(null=True)
    output = models.JSONField(null=True)
    metadata = models.JSONField(null=True)

    class Meta:
        managed = False
        db_table = "calls_callcontent"


class Trace(models.Model):
    """Running totals per trace, maintained in the same statement that inserts its calls.

    Like every telemetry table, it keeps project_id as a plain column without a database
    foreign key: the key's check cost a trigger call per inserted row on the ingest path, and
    a plain column lets the tables be distributed by project. Django still cascades deletes.
    """

    # No index of its own: the unique (project, trace_id) one serves every lookup by project, and a
    # second would cost each new trace one more index insert on the ingest path.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_constraint=False, db_index=False,
                                related_name="+")
    trace_id = models.TextField()
    name = models.TextField(null=True)  # the root span's name, once the root has arrived
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    duration_ms = models.GeneratedField(
        expression=Extract(F("end_time") - F("start_time"), "epoch") * 1000,
        output_field=models.FloatField(),
        db_persist=True,
    )
    user_id = models.TextField(null=True)
    session_id = models.TextField(null=True)
    environment = models.TextField(null=True)
    release = models.TextField(null=True)
    tags = ArrayField(models.TextField(), default=list)
    # Trace-level input, output and metadata, when a client sends them (Langfuse traces do);
    # masked like call content and hidden from roles that may not read prompts.
    input = models.JSONField(null=True)
    output = models.JSONField(null=True)
    metadata = models.JSONField(null=True)
    span_count = models.IntegerField(default=0)
    model_call_count = models.IntegerField(default=0)
    error_count = models.IntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=COST_DIGITS + 4, decimal_places=COST_PLACES, default=0)
    unpriced_call_count = models.IntegerField(default=0)
    updated_at = models.DateTimeField()
    # Set by loop detection (observatory.reliability.loops) when the trace passed its project's
    # limits, and kept up to date while it goes on growing. Nullable rather than defaulted so
    # that the ingest statements, which never touch them, need not name them.
    loop_flagged_at = models.DateTimeField(null=True)
    loop_reasons = ArrayField(models.TextField(), null=True)  # "spans", "spend", "repeated_prompt"
    # The most times one identical prompt was sent within the detection window.
    repeated_prompts = models.IntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "trace_id"], name="trace_unique_per_project")]
        indexes = [
            models.Index(F("project"), F("start_time").desc(), F("id").desc(), name="trace_list_idx"),
            # Flagged traces are few: the loops list and the loop alert rule read only these.
            models.Index(F("project"), F("loop_flagged_at").desc(), name="trace_loops_idx",
                         condition=Q(loop_flagged_at__isnull=False)),
        ]

    @property
    def is_loop(self) -> bool:
        return self.loop_flagged_at is not None

    @property
    def has_error(self) -> bool:
        return self.error_count > 0


class ScoreDataType(models.TextChoices):
    NUMERIC = "numeric"
    BOOLEAN = "boolean"
    CATEGORICAL = "categorical"
    TEXT = "text"


class Score(models.Model):
    """Feedback or an evaluation attached to a trace, one call in it, or a whole session."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_constraint=False, related_name="+")
    # The client's id for the score: sending it again updates the score instead of adding one.
    score_id = models.TextField()
    trace_id = models.TextField(null=True)
    span_id = models.TextField(null=True)
    session_id = models.TextField(null=True)
    name = models.TextField()
    data_type = models.TextField(choices=ScoreDataType.choices)
    value = models.FloatField(null=True)  # numeric, or 1/0 for boolean
    string_value = models.TextField(null=True)  # categorical and text
    comment = models.TextField(null=True)
    source = models.TextField(default="api")
    timestamp = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "score_id"], name="score_unique_per_project"),
            models.CheckConstraint(
                condition=(
                    Q(data_type__in=["categorical", "text"], string_value__isnull=False)
                    | Q(data_type__in=["numeric", "boolean"], value__isnull=False)
                ),
                name="score_value_matches_type",
            ),
            models.CheckConstraint(
                condition=Q(trace_id__isnull=False) | Q(session_id__isnull=False),
                name="score_has_a_subject",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "trace_id"], name="score_trace_idx"),
            # The quality page: a window's latest scores.
            models.Index(F("project"), F("timestamp").desc(), name="score_time_idx"),
            # The quality page's latest feedback comments, which are few among the scores.
            models.Index(fields=["project", "timestamp"], include=["name", "data_type"],
                         condition=Q(comment__isnull=False), name="score_commented_idx"),
        ]


class ScoreHour(models.Model):
    """Scores per project, UTC hour, name, type and category: what the Quality page's summary
    reads for the whole hours of its window, instead of every score of a month.

    Kept exact by statement triggers on calls_score (migration 0014): every insert, replacing
    upsert and retention delete adds or subtracts its rows in the same transaction, so the
    summary never waits for a job and never counts a replaced score twice. A row may fall to a
    count of zero (its scores moved or expired); readers skip those.
    """

    id = models.BigAutoField(primary_key=True)
    # The unique key below leads with the project: no index of its own.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_constraint=False, db_index=False,
                                related_name="+")
    hour = models.DateTimeField()
    name = models.TextField()
    data_type = models.TextField(choices=ScoreDataType.choices)
    # The value of a categorical score; empty for the other types.
    category = models.TextField(default="")
    count = models.BigIntegerField()
    value_count = models.BigIntegerField()
    value_sum = models.FloatField()
    commented = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "hour", "name", "data_type", "category"],
                                    name="scorehour_unique"),
        ]


class ChangedMinute(models.Model):
    """A minute of a project's calls that changed since rollups last looked.

    Every write appends its own mark in the transaction that stores its calls, without
    looking at existing marks, so a mark is committed exactly when its calls are. The rollup
    job claims committed marks (DELETE ... RETURNING, in the transaction that recomputes the
    minutes): a write still in flight keeps its mark, and the minute is recomputed again once
    it commits. A job killed midway rolls back its claim. Late calls mark the minute they belong
    to, however old. (One shared mark per minute would need a row lock, which would make every
    concurrent write to the same minute wait for the others' commits.)
    """

    id = models.BigAutoField(primary_key=True)
    # Indexed together with the minute below; a second index on the project alone would only
    # slow the write path down.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_constraint=False, db_index=False,
                                related_name="+")
    minute = models.DateTimeField()
    marked_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["project", "minute"], name="changedminute_claim_idx")]
