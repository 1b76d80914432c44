"""Realistic demo traffic, written through the same path as ingest (calls_write).

Traces look like what an LLM product emits: a workflow span with retrieval (an embedding
call under a retriever span), one or two model calls and sometimes a tool call in between.
Several providers and models at their catalogue prices, a self-hosted model with no known
price, heavy-tailed latencies, time to first token on streamed calls, about 2 % errors,
some finish_reason=length, prompt versions rolled out over time, a weekday and time-of-day
pattern, and a few heavy users. Some traces get feedback (thumbs up or down, now and then
with a comment) and some model calls an evaluator's helpfulness score; newer prompt versions
score a little better, failed traces worse.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connections

from observatory.calls.partitions import partitions_ensure
from observatory.calls.records import CallRecord, ScoreRecord
from observatory.calls.services import calls_write
from observatory.calls.updates import scores_write
from observatory.tenancy.models import Project


@dataclass(frozen=True)
class ModelProfile:
    provider: str
    model: str
    median_ttft_ms: float
    tokens_per_second: float
    caches_prompts: bool = False
    reasons: bool = False


MODELS = {
    "gpt-4o-mini": ModelProfile("openai", "gpt-4o-mini", 350, 90, caches_prompts=True),
    "gpt-4o": ModelProfile("openai", "gpt-4o", 500, 60, caches_prompts=True),
    "gpt-4.1-mini": ModelProfile("openai", "gpt-4.1-mini", 400, 85, caches_prompts=True),
    "o4-mini": ModelProfile("openai", "o4-mini", 2500, 70, reasons=True),
    "claude-sonnet-4-5": ModelProfile("anthropic", "claude-sonnet-4-5", 700, 55, caches_prompts=True),
    "claude-haiku-4-5": ModelProfile("anthropic", "claude-haiku-4-5", 400, 110, caches_prompts=True),
    "gemini-2.5-flash": ModelProfile("google", "gemini-2.5-flash", 300, 150),
    # Self-hosted: the catalogue has no price for it, so its calls show as unpriced.
    "llama-3.1-8b-instruct": ModelProfile("vllm", "llama-3.1-8b-instruct", 150, 120),
}
EMBEDDING = ModelProfile("openai", "text-embedding-3-small", 30, 0)


@dataclass(frozen=True)
class Feature:
    name: str
    weight: float
    models: tuple[tuple[str, float], ...]
    input_tokens: tuple[float, float]  # lognormal median, sigma
    output_tokens: tuple[float, float]
    retrieval: bool
    tool_share: float
    prompt_versions: tuple[str, ...]
    max_tokens: int


FEATURES = (
    Feature("support-chat", 0.34, (("gpt-4o-mini", 0.6), ("claude-haiku-4-5", 0.3), ("gpt-4o", 0.1)),
            (1800, 0.5), (220, 0.6), True, 0.3, ("v3", "v4"), 1024),
    Feature("search-answer", 0.22, (("gemini-2.5-flash", 0.7), ("gpt-4.1-mini", 0.3)),
            (2500, 0.4), (300, 0.5), True, 0.0, ("v1", "v2"), 800),
    Feature("summarize-ticket", 0.16, (("claude-sonnet-4-5", 0.7), ("gpt-4o", 0.3)),
            (5000, 0.6), (400, 0.4), False, 0.0, ("v2",), 600),
    Feature("classify-intent", 0.18, (("gpt-4o-mini", 0.7), ("llama-3.1-8b-instruct", 0.3)),
            (400, 0.3), (8, 0.4), False, 0.0, ("v5", "v6"), 16),
    Feature("code-review", 0.10, (("claude-sonnet-4-5", 0.6), ("o4-mini", 0.4)),
            (7000, 0.7), (900, 0.5), False, 0.2, ("v1",), 2048),
)
ERRORS = (
    ("RateLimitError", "429 Too Many Requests: rate limit reached for requests", 0.45),
    ("APITimeoutError", "Request timed out after 30s", 0.25),
    ("InternalServerError", "500 The server had an error while processing your request", 0.2),
    ("BadRequestError", "400 This model's maximum context length was exceeded", 0.1),
)
QUESTIONS = (
    "How do I reset my password? My email is {email}.",
    "Why was I charged twice this month? Card ending 4242.",
    "Can you summarize ticket #{ticket} for the on-call engineer?",
    "Which plan includes SSO and audit logs?",
    "The export to CSV fails with a timeout, what should I do?",
    "Please call me back at +1 415 555 {ticket}.",
)
ENVIRONMENTS = (("production", 0.9), ("staging", 0.1))
FEEDBACK_RATE = 0.08  # traces a user rates
EVALUATION_RATE = 0.1  # model calls an evaluator scores
FEEDBACK_COMMENTS = (
    (True, "Perfect, thanks!"),
    (True, "That solved it."),
    (False, "Didn't answer my question."),
    (False, "The answer was cut off."),
    (False, "Wrong plan name."),
)
HOUR_WEIGHTS = [0.25, 0.2, 0.18, 0.18, 0.2, 0.3, 0.5, 0.8, 1.0, 1.0, 1.0, 0.95, 0.9, 0.95, 1.0, 1.0, 0.95, 0.85, 0.7,
                0.6, 0.5, 0.45, 0.38, 0.3]
WEEKDAY_WEIGHTS = [1.0, 1.05, 1.05, 1.0, 0.9, 0.4, 0.35]  # Monday .. Sunday
AVERAGE_CALLS_PER_TRACE = 3.35
BATCH_SIZE = 5000


@dataclass
class DemoStats:
    calls: int = 0
    traces: int = 0
    duplicates: int = 0
    scores: int = 0


def _weighted(rng: random.Random, pairs) -> str:
    return rng.choices([value for value, *_ in pairs], weights=[pair[-1] for pair in pairs])[0]


class _TraceFactory:
    def __init__(self, rng: random.Random, *, users: int, content_rate: float, first: datetime, last: datetime):
        self.rng = rng
        self.content_rate = content_rate
        self.first, self.span = first, (last - first).total_seconds()
        # A few heavy users make most of the calls (Zipf-like), as in real products.
        self.users = [f"user_{i:05d}" for i in range(users)]
        self.user_cum_weights = list(itertools.accumulate(1 / (rank + 1) ** 0.9 for rank in range(users)))
        self.feature_cum_weights = list(itertools.accumulate(feature.weight for feature in FEATURES))
        # Scores draw from their own generator, so the calls are the same with or without them.
        self.score_rng = random.Random(rng.random())
        self.scores: list[ScoreRecord] = []

    def _id(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def _lognormal(self, median: float, sigma: float) -> float:
        return self.rng.lognormvariate(math.log(median), sigma)

    def trace(self, start: datetime) -> list[CallRecord]:
        rng = self.rng
        feature = rng.choices(FEATURES, cum_weights=self.feature_cum_weights)[0]
        user = rng.choices(self.users, cum_weights=self.user_cum_weights)[0]
        # Prompt versions roll out over the window: later traces use newer versions.
        progress = (start - self.first).total_seconds() / self.span if self.span else 1.0
        version_index = min(len(feature.prompt_versions) - 1, int(progress * len(feature.prompt_versions) + rng.random() * 0.3))
        common = {
            "trace_id": self._id(128),
            "user_id": user,
            "session_id": f"sess_{user[5:]}_{start:%Y%m%d}_{rng.randrange(3)}",
            "environment": _weighted(rng, ENVIRONMENTS),
            "release": f"2026.{start.month}.{start.day // 8}",
            "feature": feature.name,
        }
        root_id = self._id(64)
        records: list[CallRecord] = []
        cursor = start + timedelta(milliseconds=rng.uniform(1, 5))
        with_content = rng.random() < self.content_rate
        question = rng.choice(QUESTIONS).format(email=f"{user}@example.com", ticket=rng.randrange(1000, 9999))

        if feature.retrieval:
            retriever_id = self._id(64)
            embed_latency = self._lognormal(EMBEDDING.median_ttft_ms, 0.4)
            search_latency = self._lognormal(25, 0.5)
            records.append(self._call(common, kind="embedding", name="embed-query", span_id=self._id(64),
                                      parent=retriever_id, start=cursor + timedelta(milliseconds=1),
                                      latency=embed_latency, profile=EMBEDDING, input_tokens=int(self._lognormal(40, 0.4)),
                                      output_tokens=0, content=(question, None) if with_content else None))
            retrieval_latency = embed_latency + search_latency + 2
            records.append(CallRecord(**common, kind="retriever", name="vector-search", span_id=retriever_id,
                                      parent_span_id=root_id, start_time=cursor, latency_ms=retrieval_latency,
                                      metadata={"top_k": 8, "index": "kb-articles"}))
            cursor += timedelta(milliseconds=retrieval_latency + 1)

        model_name = _weighted(rng, feature.models)
        cursor = self._generation(records, common, feature, model_name, root_id, cursor, version_index, question, with_content)
        if rng.random() < feature.tool_share:
            tool_latency = self._lognormal(120, 0.8)
            records.append(CallRecord(**common, kind="tool", name="lookup_order", span_id=self._id(64),
                                      parent_span_id=root_id, start_time=cursor, latency_ms=tool_latency))
            cursor += timedelta(milliseconds=tool_latency + 1)
            cursor = self._generation(records, common, feature, model_name, root_id, cursor, version_index, question,
                                      with_content)

        failed = any(record.status == "error" for record in records)
        end = cursor + timedelta(milliseconds=rng.uniform(1, 10))
        records.append(CallRecord(**common, kind="chain", name=feature.name, span_id=root_id, start_time=start,
                                  end_time=end, status="error" if failed else "ok",
                                  tags=[feature.name, common["environment"]]))
        self._score(records, feature, version_index, failed, end)
        return records

    def _score(self, records: list[CallRecord], feature: Feature, version_index: int, failed: bool,
               end: datetime) -> None:
        rng = self.score_rng
        trace_id = records[0].trace_id
        # Each newer prompt version is a little better; a failed trace rarely pleases anyone.
        quality = 0.72 + 0.08 * version_index - (0.5 if failed else 0.0)
        if rng.random() < FEEDBACK_RATE:
            liked = rng.random() < quality
            comment = None
            if rng.random() < 0.3:
                comment = rng.choice([text for positive, text in FEEDBACK_COMMENTS if positive == liked])
            self.scores.append(ScoreRecord(
                score_id=f"fb-{trace_id}", name="user-feedback", data_type="boolean", value=1.0 if liked else 0.0,
                comment=comment, source="user", trace_id=trace_id,
                timestamp=end + timedelta(seconds=rng.uniform(5, 90)),
            ))
        for record in records:
            if record.kind == "generation" and record.status == "ok" and rng.random() < EVALUATION_RATE:
                value = min(1.0, max(0.0, rng.gauss(quality, 0.15)))
                self.scores.append(ScoreRecord(
                    score_id=f"eval-{record.span_id}", name="helpfulness", data_type="numeric",
                    value=round(value, 3), source="evaluator", trace_id=trace_id, span_id=record.span_id,
                    timestamp=end + timedelta(seconds=rng.uniform(1, 30)),
                ))

    def _generation(self, records, common, feature: Feature, model_name: str, parent: str, start: datetime,
                    version_index: int, question: str, with_content: bool) -> datetime:
        rng = self.rng
        profile = MODELS[model_name]
        input_tokens = max(1, int(self._lognormal(*feature.input_tokens)))
        output_tokens = max(1, int(self._lognormal(*feature.output_tokens)))
        finish_reason = "stop"
        if output_tokens >= feature.max_tokens or rng.random() < 0.025:
            output_tokens, finish_reason = feature.max_tokens, "length"
        ttft = self._lognormal(profile.median_ttft_ms, 0.45)
        if rng.random() < 0.01:  # provider hiccups: the heavy tail every P99 chart shows
            ttft *= rng.uniform(4, 12)
        latency = ttft + output_tokens / profile.tokens_per_second * 1000 * rng.uniform(0.8, 1.25)
        error = None
        if rng.random() < 0.02:
            error = rng.choices(ERRORS, weights=[weight for *_, weight in ERRORS])[0]
            output_tokens, finish_reason = 0, None
            latency = 30000.0 if error[0] == "APITimeoutError" else self._lognormal(300, 0.5)
        cached = int(input_tokens * rng.uniform(0.3, 0.9)) if profile.caches_prompts and rng.random() < 0.35 else 0
        reasoning = int(output_tokens * rng.uniform(0.5, 2.0)) if profile.reasons and not error else 0
        streamed = rng.random() < 0.7
        answer = None
        if with_content and not error:
            answer = f"Thanks for reaching out. Here is what I found about: {question[:60]}"
        records.append(self._call(
            common, kind="generation", name=f"{feature.name}.completion", span_id=self._id(64), parent=parent,
            start=start, latency=latency, profile=profile, input_tokens=input_tokens,
            output_tokens=output_tokens + reasoning, reasoning_tokens=reasoning, cached=cached,
            ttft=ttft if streamed and not error else None, finish_reason=finish_reason, error=error,
            prompt=(feature.name, feature.prompt_versions[version_index]),
            content=([{"role": "system", "content": "You are a helpful support assistant."},
                      {"role": "user", "content": question}], answer) if with_content else None,
            metadata={"temperature": 0.2, "max_tokens": feature.max_tokens, "stream": streamed},
        ))
        return start + timedelta(milliseconds=latency + 1)

    def _call(self, common, *, kind, name, span_id, parent, start, latency, profile: ModelProfile, input_tokens,
              output_tokens, reasoning_tokens=0, cached=0, ttft=None, finish_reason=None, error=None, prompt=None,
              content=None, metadata=None) -> CallRecord:
        return CallRecord(
            **common,
            kind=kind,
            name=name,
            span_id=span_id,
            parent_span_id=parent,
            start_time=start,
            latency_ms=latency,
            time_to_first_token_ms=ttft,
            provider=profile.provider,
            model=profile.model,
            input_tokens=input_tokens,
            cached_input_tokens=cached,
            output_tokens=output_tokens,
            reasoning_tokens=reasoning_tokens,
            finish_reason=finish_reason,
            status="error" if error else "ok",
            error_type=error[0] if error else None,
            error_message=error[1] if error else None,
            prompt_name=prompt[0] if prompt else None,
            prompt_version=prompt[1] if prompt else None,
            input=content[0] if content else None,
            output=content[1] if content else None,
            metadata=metadata or {},
        )


@dataclass(frozen=True)
class _Hour:
    lower: datetime
    upper: datetime
    traces: int


def _hour_plan(*, traces: int, first: datetime, last: datetime) -> list[_Hour]:
    """How many traces start in each hour of [first, last), following the weekday and hour
    pattern. Deterministic, so parallel workers can split it between them."""
    hours = []
    moment = first.replace(minute=0, second=0, microsecond=0)
    while moment < last:
        hours.append((moment, WEEKDAY_WEIGHTS[moment.weekday()] * HOUR_WEIGHTS[moment.hour]))
        moment += timedelta(hours=1)
    total = sum(weight for _, weight in hours)
    plan, emitted, carried = [], 0, 0.0
    for index, (hour, weight) in enumerate(hours):
        carried += traces * weight / total
        count = int(carried) if index < len(hours) - 1 else traces - emitted
        carried -= count
        emitted += count
        plan.append(_Hour(max(hour, first), min(hour + timedelta(hours=1), last), count))
    return plan


def _generate_hours(
    *, project: Project, hours: list[_Hour], factory: _TraceFactory, progress: Callable[[DemoStats], None] | None
) -> DemoStats:
    stats = DemoStats()
    batch: list[CallRecord] = []
    for hour in hours:
        seconds = (hour.upper - hour.lower).total_seconds()
        for offset in sorted(factory.rng.uniform(0, seconds) for _ in range(hour.traces)):
            batch.extend(factory.trace(hour.lower + timedelta(seconds=offset)))
            stats.traces += 1
            if len(batch) >= BATCH_SIZE:
                _flush(project, batch, factory, stats, progress)
                batch = []
    if batch:
        _flush(project, batch, factory, stats, progress)
    return stats


def demo_traffic_generate(
    *,
    project: Project,
    calls: int,
    days: int,
    seed: int | None = None,
    now: datetime | None = None,
    content_rate: float | None = None,
    users: int = 2000,
    workers: int = 1,
    progress: Callable[[DemoStats], None] | None = None,
) -> DemoStats:
    """Write about `calls` calls (whole traces, so a few more) spread over the last `days`.

    With several workers, each process takes every n-th hour: generating rows in Python and
    inserting them in PostgreSQL then overlap instead of taking turns.
    """
    last = (now or datetime.now(UTC)).astimezone(UTC)
    first = last - timedelta(days=days)
    partitions_ensure(first_day=first.date(), last_day=last.date())
    if content_rate is None:
        # Content is most of a row's bytes; at millions of calls keep it for a sample.
        content_rate = 1.0 if calls <= 200_000 else 0.05
    plan = _hour_plan(traces=max(1, round(calls / AVERAGE_CALLS_PER_TRACE)), first=first, last=last)

    def run(worker: int) -> DemoStats:
        rng = random.Random(None if seed is None else seed * 1000 + worker)
        factory = _TraceFactory(rng, users=users, content_rate=content_rate, first=first, last=last)
        # One worker reports for all: they share the load evenly.
        report = None if progress is None or worker else (lambda stats: progress(_scaled(stats, workers)))
        return _generate_hours(project=project, hours=plan[worker::workers], factory=factory, progress=report)

    if workers <= 1:
        return run(0)
    return _in_processes(run, workers)


def _in_processes(run: Callable[[int], DemoStats], workers: int) -> DemoStats:
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def child(worker: int) -> None:
        results.put(run(worker))
        connections.close_all()

    # Forked children must not share the parent's database connection.
    connections.close_all()
    processes = [context.Process(target=child, args=(worker,)) for worker in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [process.exitcode for process in processes if process.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} demo worker(s) failed (exit codes {failed}).")
    total = DemoStats()
    for _ in processes:
        part = results.get(timeout=10)
        total.calls += part.calls
        total.traces += part.traces
        total.duplicates += part.duplicates
        total.scores += part.scores
    return total


def _scaled(stats: DemoStats, factor: int) -> DemoStats:
    return DemoStats(calls=stats.calls * factor, traces=stats.traces * factor, duplicates=stats.duplicates * factor,
                     scores=stats.scores * factor)


def _flush(project: Project, batch: list[CallRecord], factory: _TraceFactory, stats: DemoStats, progress) -> None:
    result = calls_write(project=project, records=batch)
    stats.calls += len(result.accepted)
    stats.duplicates += len(result.duplicates)
    scores_write(project=project, scores=factory.scores)
    stats.scores += len(factory.scores)
    factory.scores = []
    if progress is not None:
        progress(stats)
