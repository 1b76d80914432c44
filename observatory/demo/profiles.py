"""The demo product: its models, features, failure modes and habits.

What traffic.py generates from: edit these to change what the demo looks like, not how it is
generated.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


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
    stream_share: float  # calls streamed to the user
    exact_cache: float  # calls answered from an exact-match response cache
    semantic_cache: float  # ... and from a semantic (embedding-similarity) cache
    filtered: bool  # a content filter checks prompts and answers
    timeout_ms: float  # the client's timeout


FEATURES = (
    Feature("support-chat", 0.34, (("gpt-4o-mini", 0.6), ("claude-haiku-4-5", 0.3), ("gpt-4o", 0.1)),
            (1800, 0.5), (220, 0.6), True, 0.3, ("v3", "v4"), 1024, 0.95, 0.05, 0.04, True, 30_000),
    Feature("search-answer", 0.22, (("gemini-2.5-flash", 0.7), ("gpt-4.1-mini", 0.3)),
            (2500, 0.4), (300, 0.5), True, 0.0, ("v1", "v2"), 800, 0.9, 0.06, 0.0, True, 20_000),
    Feature("summarize-ticket", 0.16, (("claude-sonnet-4-5", 0.7), ("gpt-4o", 0.3)),
            (5000, 0.6), (400, 0.4), False, 0.0, ("v2",), 600, 0.1, 0.0, 0.0, True, 60_000),
    Feature("classify-intent", 0.18, (("gpt-4o-mini", 0.7), ("llama-3.1-8b-instruct", 0.3)),
            (400, 0.3), (8, 0.4), False, 0.0, ("v5", "v6"), 16, 0.0, 0.12, 0.0, False, 10_000),
    Feature("code-review", 0.10, (("claude-sonnet-4-5", 0.6), ("o4-mini", 0.4)),
            (7000, 0.7), (900, 0.5), False, 0.2, ("v1",), 2048, 0.8, 0.0, 0.0, False, 120_000),
)


@dataclass(frozen=True)
class ProviderError:
    type: str
    message: str
    http_status: int | None  # None: the client gave up before the provider answered
    weight: float
    retried: float  # how often the client tries the same model again
    falls_back: float  # how often it goes to another provider's model instead


ERRORS = (
    ProviderError("RateLimitError", "429 Too Many Requests: rate limit reached for requests", 429, 0.45, 0.9, 0.05),
    ProviderError("APITimeoutError", "Request timed out after {seconds}s", None, 0.25, 0.5, 0.3),
    ProviderError("InternalServerError", "500 The server had an error while processing your request", 500, 0.12,
                  0.6, 0.3),
    ProviderError("ServiceUnavailableError", "503 The engine is currently overloaded, please try again later", 503,
                  0.08, 0.5, 0.4),
    ProviderError("BadRequestError", "400 This model's maximum context length was exceeded", 400, 0.1, 0.0, 0.0),
)
ERROR_RATE = 0.02  # first tries that fail
RETRY_ERROR_RATE = 0.12  # retries that fail again (the provider is still struggling)
MAX_ATTEMPTS = 3
# Where a gateway sends a call when its provider fails: another provider's model of the same class.
FALLBACKS = {
    "gpt-4o-mini": "claude-haiku-4-5", "gpt-4o": "claude-sonnet-4-5", "gpt-4.1-mini": "claude-haiku-4-5",
    "o4-mini": "claude-sonnet-4-5", "claude-sonnet-4-5": "gpt-4o", "claude-haiku-4-5": "gpt-4o-mini",
    "gemini-2.5-flash": "gpt-4.1-mini", "llama-3.1-8b-instruct": "gpt-4o-mini",
}
MAX_TOKENS_SET = 0.97  # model calls that set max_tokens (the rest forgot)
TIMEOUT_SET = 0.98  # model calls with a client timeout
INPUT_BLOCKED = 0.003  # prompts a content filter refuses before any model sees them
OUTPUT_FLAGGED = 0.004  # answers it flags
LOOP_SHARE = 1 / 4000  # traces in which an agent loops
LOOP_STEPS = (12, 30)
ERROR_CUM_WEIGHTS = list(itertools.accumulate(error.weight for error in ERRORS))
# A prompt the gateway's content filter refuses: no model is called.
BLOCKED = ProviderError("ContentFilterError", "The prompt was blocked by the content filter", None, 0, 0, 0)
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
