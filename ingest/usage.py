"""Token usage as instrumentations report it, normalised to Observatory's convention:
input_tokens counts cached prompt tokens, output_tokens counts reasoning tokens."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int | None = None

    def record_fields(self) -> dict[str, int | None]:
        """The token fields of a CallRecord (or CallPatch), which carry the same names."""
        return asdict(self)


def consistent(usage: Usage) -> Usage:
    """Some instrumentations (Anthropic's API, and those copying it) report input tokens
    without the cached ones; when the parts exceed the whole, add them in."""
    if usage.cached_input_tokens + usage.cache_write_tokens > usage.input_tokens:
        usage.input_tokens += usage.cached_input_tokens + usage.cache_write_tokens
    if usage.reasoning_tokens > usage.output_tokens:
        usage.output_tokens += usage.reasoning_tokens
    return usage


def usage_from_details(details: dict[str, Any], warnings: list[str]) -> Usage:
    """Langfuse usage details: disjoint buckets (input excludes cached tokens), keyed input*,
    output*, total, plus OpenAI's and Anthropic's own usage shapes."""
    numbers: dict[str, int] = {}
    for key, value in details.items():
        if isinstance(value, dict):  # OpenAI's *_tokens_details objects
            for inner, amount in value.items():
                if isinstance(amount, int) and not isinstance(amount, bool) and amount >= 0:
                    numbers[f"{key}.{inner}"] = amount
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            numbers[key] = value
        elif value is not None:
            warnings.append(f"usage_details.{key} is not a token count ({value!r}); ignored")
    if "prompt_tokens" in numbers or "completion_tokens" in numbers:  # OpenAI chat completions
        return consistent(Usage(
            input_tokens=numbers.get("prompt_tokens", 0), output_tokens=numbers.get("completion_tokens", 0),
            cached_input_tokens=numbers.get("prompt_tokens_details.cached_tokens", 0),
            reasoning_tokens=numbers.get("completion_tokens_details.reasoning_tokens", 0),
            total_tokens=numbers.get("total_tokens"),
        ))
    if "input_tokens" in numbers or "output_tokens" in numbers:  # OpenAI responses, Anthropic
        cached = numbers.get("input_tokens_details.cached_tokens", 0) + numbers.get("cache_read_input_tokens", 0)
        written = numbers.get("cache_creation_input_tokens", 0)
        return consistent(Usage(
            input_tokens=numbers.get("input_tokens", 0), output_tokens=numbers.get("output_tokens", 0),
            cached_input_tokens=cached, cache_write_tokens=written,
            reasoning_tokens=numbers.get("output_tokens_details.reasoning_tokens", 0),
        ))
    inputs = {k: v for k, v in numbers.items() if k.startswith("input") or k.endswith("input_tokens")}
    outputs = {k: v for k, v in numbers.items() if k.startswith("output") or k.endswith("output_tokens")}
    cached = sum(v for k, v in inputs.items() if "cache_read" in k or "cached" in k)
    written = sum(v for k, v in inputs.items() if "cache_creation" in k or "cache_write" in k)
    return Usage(
        input_tokens=sum(inputs.values()),
        output_tokens=sum(outputs.values()),
        cached_input_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=sum(v for k, v in outputs.items() if "reasoning" in k),
        total_tokens=numbers.get("total"),
    )
