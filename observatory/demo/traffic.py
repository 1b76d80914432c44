"""Realistic demo traffic, written through the same path as ingest (calls_write).

Traces look like what an LLM product emits: a workflow span with retrieval (an embedding
call under a retriever span), one or two model calls and sometimes a tool call in between.
Several providers and models at their catalogue prices, a self-hosted model with no known
price, heavy-tailed latencies, time to first token on streamed calls, about 2 % errors,
some finish_reason=length, prompt versions rolled out over time, a weekday and time-of-day
pattern, and a few heavy users. Some traces get feedback (thumbs up or down, now and then
with a comment) and some model calls an evaluator's helpfulness score; newer prompt versions
score a little better, failed traces worse.

The safety nets around the calls leave their signals too: most model calls set max_tokens and
a timeout; user-facing features stream; support and classification answer a share from exact or
semantic response caches; 429s and 5xx are retried (attempt 2, retry_of the failed call) or fall
back to another provider's model; now and then a call times out; user-facing features run a
content filter that rarely blocks a prompt or flags an answer; and a few agent traces loop,
sending one prompt again and again, which loop detection flags as the traces are written.
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
from observatory.demo.profiles import (
    BLOCKED,
    EMBEDDING,
    ENVIRONMENTS,
    ERRORS,
    ERROR_CUM_WEIGHTS,
    ERROR_RATE,
    EVALUATION_RATE,
    FALLBACKS,
    FEATURES,
    FEEDBACK_COMMENTS,
    FEEDBACK_RATE,
    HOUR_WEIGHTS,
    INPUT_BLOCKED,
    LOOP_SHARE,
    LOOP_STEPS,
    MAX_ATTEMPTS,
    MAX_TOKENS_SET,
    MODELS,
    OUTPUT_FLAGGED,
    QUESTIONS,
    RETRY_ERROR_RATE,
    TIMEOUT_SET,
    WEEKDAY_WEIGHTS,
    Feature,
    ModelProfile,
    ProviderError,
)
from observatory.reliability.loops import loops_detect
from observatory.tenancy.models import Project

AVERAGE_CALLS_PER_TRACE = 3.35
BATCH_SIZE = 5000


@dataclass(slots=True)
class _ModelCall:
    """What stays the same across the tries of one model call."""

    feature: Feature
    parent: str
    input_tokens: int
    output_tokens: int
    prompt: tuple[str, str]
    question: str
    with_content: bool
    max_tokens: int | None
    timeout_ms: float | None
    streamed: bool


@dataclass
class DemoStats:
    calls: int = 0
    traces: int = 0
    duplicates: int = 0
    scores: int = 0
    loops: int = 0  # runaway-loop traces, flagged by loop detection


def _weighted(rng: random.Random, pairs) -> str:
    return rng.choices([value for value, *_ in pairs], weights=[pair[-1] for pair in pairs])[0]


class _TraceFactory:
    def __init__(self, rng: random.Random, *, users: int, content_rate: float, first: datetime, last: datetime):
        self.rng = rng
        self.content_rate = content_rate
        self.first, self.last, self.span = first, last, (last - first).total_seconds()
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
                                      output_tokens=0, content=(question, None) if with_content else None,
                                      signals={"timeout_ms": 10_000.0, "http_status": 200, "attempt": 1}))
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
        """One model call as the application sees it: answered from a cache, blocked by the
        content filter, or sent to the provider and retried or sent elsewhere when that fails."""
        rng = self.rng
        profile = MODELS[model_name]
        input_tokens = max(1, int(self._lognormal(*feature.input_tokens)))
        output_tokens = max(1, int(self._lognormal(*feature.output_tokens)))
        call = _ModelCall(
            feature=feature, parent=parent, input_tokens=input_tokens, output_tokens=output_tokens,
            prompt=(feature.name, feature.prompt_versions[version_index]), question=question,
            with_content=with_content,
            # The client's settings: the same for every try of the call.
            max_tokens=feature.max_tokens if rng.random() < MAX_TOKENS_SET else None,
            timeout_ms=feature.timeout_ms if rng.random() < TIMEOUT_SET else None,
            streamed=rng.random() < feature.stream_share,
        )
        cache = rng.random()
        if cache < feature.exact_cache + feature.semantic_cache:
            kind = "exact" if cache < feature.exact_cache else "semantic"
            # A semantic cache embeds the prompt and searches first; an exact one only looks up a key.
            latency = self._lognormal(8, 0.5) if kind == "exact" else self._lognormal(60, 0.4)
            records.append(self._model_record(common, call, profile, start=start, latency=latency,
                                              output_tokens=output_tokens, finish_reason="stop",
                                              ttft=latency * 0.3 if call.streamed else None, cache_kind=kind))
            return start + timedelta(milliseconds=latency + 1)
        if feature.filtered and rng.random() < INPUT_BLOCKED:
            latency = self._lognormal(40, 0.3)
            records.append(self._model_record(common, call, profile, start=start, latency=latency, input_tokens=0,
                                              output_tokens=0, error=BLOCKED, content_filter="input_blocked"))
            return start + timedelta(milliseconds=latency + 1)

        error = self._error() if rng.random() < ERROR_RATE else None
        attempt, retry_of, fallback_from = 1, None, None
        cursor = start
        while True:
            span_id, latency = self._try(records, common, call, profile, start=cursor, error=error, attempt=attempt,
                                         retry_of=retry_of, fallback_from=fallback_from)
            cursor += timedelta(milliseconds=latency + 1)
            if error is None:
                return cursor
            draw = rng.random()
            if attempt < MAX_ATTEMPTS and draw < error.retried:
                # Back off (longer after a 429), then try the same model again.
                cursor += timedelta(milliseconds=rng.uniform(1000, 5000) if error.http_status == 429
                                    else rng.uniform(300, 2000))
                attempt, retry_of = attempt + 1, span_id
                error = error if rng.random() < RETRY_ERROR_RATE else None
            elif fallback_from is None and draw < error.retried + error.falls_back:
                fallback_from, profile = profile, MODELS[FALLBACKS[profile.model]]
                attempt, retry_of = 1, None
                error = self._error() if rng.random() < RETRY_ERROR_RATE / 2 else None
            else:
                return cursor

    def _error(self) -> ProviderError:
        return self.rng.choices(ERRORS, cum_weights=ERROR_CUM_WEIGHTS)[0]

    def _try(self, records, common, call: _ModelCall, profile: ModelProfile, *, start: datetime,
             error: ProviderError | None, attempt: int, retry_of: str | None,
             fallback_from: ModelProfile | None) -> tuple[str, float]:
        """One request to a provider: (its span id, its latency)."""
        rng = self.rng
        output_tokens, finish_reason = call.output_tokens, "stop"
        if output_tokens >= call.feature.max_tokens or rng.random() < 0.025:
            output_tokens, finish_reason = call.feature.max_tokens, "length"
        ttft = self._lognormal(profile.median_ttft_ms, 0.45)
        if rng.random() < 0.01:  # provider hiccups: the heavy tail every P99 chart shows
            ttft *= rng.uniform(4, 12)
        latency = ttft + output_tokens / profile.tokens_per_second * 1000 * rng.uniform(0.8, 1.25)
        content_filter = "passed" if call.feature.filtered else None
        if error is not None:
            output_tokens, finish_reason = 0, None
            # Without a timeout of its own the client waits for the SDK's default (10 minutes).
            latency = (call.timeout_ms or 600_000.0) if error.http_status is None else self._lognormal(300, 0.5)
        elif call.feature.filtered and rng.random() < OUTPUT_FLAGGED:
            content_filter, finish_reason = "output_flagged", "content_filter"
        cached = int(call.input_tokens * rng.uniform(0.3, 0.9)) if profile.caches_prompts and rng.random() < 0.35 else 0
        reasoning = int(output_tokens * rng.uniform(0.5, 2.0)) if profile.reasons and not error else 0
        record = self._model_record(
            common, call, profile, start=start, latency=latency, output_tokens=output_tokens + reasoning,
            reasoning_tokens=reasoning, cached=cached, ttft=ttft if call.streamed and not error else None,
            finish_reason=finish_reason, error=error, content_filter=content_filter,
            http_status=200 if error is None else error.http_status, attempt=attempt, retry_of=retry_of,
            fallback_from=fallback_from,
        )
        records.append(record)
        return record.span_id, latency

    def _model_record(self, common, call: _ModelCall, profile: ModelProfile, *, start: datetime, latency: float,
                      output_tokens: int, input_tokens: int | None = None, reasoning_tokens: int = 0, cached: int = 0,
                      ttft: float | None = None, finish_reason: str | None = None, error: ProviderError | None = None,
                      content_filter: str | None = None, http_status: int | None = None, attempt: int | None = None,
                      retry_of: str | None = None, fallback_from: ModelProfile | None = None,
                      cache_kind: str | None = None) -> CallRecord:
        answer = None
        if call.with_content and not error:
            answer = f"Thanks for reaching out. Here is what I found about: {call.question[:60]}"
        if error is not None:
            message = error.message.format(seconds=round(latency / 1000))
            error = (error.type, message)
        if content_filter is None and call.feature.filtered:
            content_filter = "passed"  # a cached answer was checked when it was first given
        return self._call(
            common, kind="generation", name=f"{call.feature.name}.completion", span_id=self._id(64),
            parent=call.parent, start=start, latency=latency, profile=profile,
            input_tokens=call.input_tokens if input_tokens is None else input_tokens, output_tokens=output_tokens,
            reasoning_tokens=reasoning_tokens, cached=cached, ttft=ttft, finish_reason=finish_reason, error=error,
            prompt=call.prompt,
            content=([{"role": "system", "content": "You are a helpful support assistant."},
                      {"role": "user", "content": call.question}], answer) if call.with_content else None,
            metadata={"temperature": 0.2},
            signals={
                "max_tokens": call.max_tokens, "timeout_ms": call.timeout_ms, "streamed": call.streamed,
                "cache_kind": cache_kind, "content_filter": content_filter, "http_status": http_status,
                "attempt": attempt, "retry_of": retry_of,
                "fallback_from_provider": fallback_from.provider if fallback_from else None,
                "fallback_from_model": fallback_from.model if fallback_from else None,
            },
        )

    def loop_trace(self, start: datetime) -> list[CallRecord]:
        """An agent that never sees its tool's answer and asks the same thing until its step
        limit stops it: the runaway loop loop detection exists for."""
        rng = self.rng
        feature = FEATURES[0]
        user = rng.choices(self.users, cum_weights=self.user_cum_weights)[0]
        common = {
            "trace_id": self._id(128), "user_id": user,
            "session_id": f"sess_{user[5:]}_{start:%Y%m%d}_{rng.randrange(3)}", "environment": "production",
            "release": f"2026.{start.month}.{start.day // 8}", "feature": feature.name,
        }
        root_id = self._id(64)
        # The prompt is kept even when content is sampled out: it is what shows the loop.
        prompt = [{"role": "system", "content": "You are an order-support agent. Call lookup_order until you know."},
                  {"role": "user", "content": f"Where is my order #{rng.randrange(1000, 9999)}?"}]
        profile = MODELS["gpt-4o-mini"]
        steps = rng.randint(*LOOP_STEPS)
        records: list[CallRecord] = []
        cursor = start + timedelta(milliseconds=rng.uniform(1, 5))
        for _ in range(steps):
            latency = self._lognormal(900, 0.3)
            records.append(self._call(
                common, kind="generation", name=f"{feature.name}.agent-step", span_id=self._id(64), parent=root_id,
                start=cursor, latency=latency, profile=profile, input_tokens=2100, output_tokens=40,
                finish_reason="tool_calls", prompt=(feature.name, feature.prompt_versions[-1]), content=(prompt, None),
                metadata={"temperature": 0.2},
                signals={"max_tokens": feature.max_tokens, "timeout_ms": feature.timeout_ms, "streamed": False,
                         "http_status": 200, "attempt": 1, "content_filter": "passed"},
            ))
            cursor += timedelta(milliseconds=latency + 1)
            tool_latency = self._lognormal(120, 0.5)
            records.append(CallRecord(**common, kind="tool", name="lookup_order", span_id=self._id(64),
                                      parent_span_id=root_id, start_time=cursor, latency_ms=tool_latency,
                                      metadata={"result": "pending"}))
            cursor += timedelta(milliseconds=tool_latency + 1)
        records.append(CallRecord(**common, kind="chain", name="support-agent", span_id=root_id, start_time=start,
                                  end_time=cursor, status="error", error_type="MaxIterationsExceeded",
                                  error_message=f"Agent stopped after {steps} steps",
                                  tags=[feature.name, "production", "agent"]))
        return records

    def _call(self, common, *, kind, name, span_id, parent, start, latency, profile: ModelProfile, input_tokens,
              output_tokens, reasoning_tokens=0, cached=0, ttft=None, finish_reason=None, error=None, prompt=None,
              content=None, metadata=None, signals=None) -> CallRecord:
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
            **(signals or {}),
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


def _loop_positions(rng: random.Random, traces: int) -> set[int]:
    """Which traces loop: a few, the last among them, so the default week on the Reliability
    page always shows one."""
    if not traces:
        return set()
    count = min(traces, max(2, round(traces * LOOP_SHARE)))
    return {traces - 1, *rng.sample(range(traces - 1), count - 1)}


def _generate_hours(
    *, project: Project, hours: list[_Hour], factory: _TraceFactory, progress: Callable[[DemoStats], None] | None
) -> DemoStats:
    stats = DemoStats()
    batch: list[CallRecord] = []
    loops = _loop_positions(factory.rng, sum(hour.traces for hour in hours))
    loop_ends: list[datetime] = []
    for hour in hours:
        seconds = (hour.upper - hour.lower).total_seconds()
        for offset in sorted(factory.rng.uniform(0, seconds) for _ in range(hour.traces)):
            start = hour.lower + timedelta(seconds=offset)
            if stats.traces in loops:
                # Early enough to end before `now`: a loop is flagged while it runs.
                records = factory.loop_trace(min(start, factory.last - timedelta(minutes=10)))
                loop_ends.append(records[-1].end_time)
            else:
                records = factory.trace(start)
            batch.extend(records)
            stats.traces += 1
            if len(batch) >= BATCH_SIZE:
                _flush(project, batch, factory, stats, progress)
                batch = []
    if batch:
        _flush(project, batch, factory, stats, progress)
    for end in loop_ends:
        # Loop detection runs every minute in production; here it runs as each loop ends.
        stats.loops += loops_detect(project=project, now=end).flagged
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
        total.loops += part.loops
    return total


def _scaled(stats: DemoStats, factor: int) -> DemoStats:
    return DemoStats(calls=stats.calls * factor, traces=stats.traces * factor, duplicates=stats.duplicates * factor,
                     scores=stats.scores * factor, loops=stats.loops * factor)


def _flush(project: Project, batch: list[CallRecord], factory: _TraceFactory, stats: DemoStats, progress) -> None:
    result = calls_write(project=project, records=batch)
    stats.calls += len(result.accepted)
    stats.duplicates += len(result.duplicates)
    scores_write(project=project, scores=factory.scores)
    stats.scores += len(factory.scores)
    factory.scores = []
    if progress is not None:
        progress(stats)
