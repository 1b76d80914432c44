"""Production signals (caches, retries, fallbacks, limits, filters) read leniently.

The native API refuses a bad signal with a 400. OpenTelemetry exporters and Langfuse SDKs
cannot fix what they send and would drop the whole call on a refusal, so those ways in keep the
call and ignore the one bad value, with a warning that names the attribute or key it came from.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from observatory.calls.records import (
    CACHE_KINDS,
    CONTENT_FILTER_OUTCOMES,
    MAX_ATTEMPT,
    MAX_ID_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_TOKENS,
    cost_problem,
)

MAX_TIMEOUT_MS = 7 * 24 * 3600 * 1000  # as the native API's latency bound: longer is a unit mix-up
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
# Signals a client may send as metadata keys of the same name (the Langfuse SDKs' only way).
METADATA_KEYS = ("cache_hit", "cache_kind", "cache_saved_cost", "attempt", "retry_of", "fallback_from_provider",
                 "fallback_from_model", "http_status", "timeout_ms", "content_filter")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def whole_number(value: Any) -> int | None:
    """An integer from an int, a whole float or digits in text (attributes arrive as any of them); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


class LenientSignals:
    """Collects signal values for a CallRecord (or CallPatch); `name` is where a value came
    from (an attribute or key) and is what a warning names."""

    def __init__(self, warnings: list[str]) -> None:
        self.warnings = warnings
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}

    def _keep(self, field: str, name: str, value: Any) -> None:
        self.values[field] = value
        self.sources[field] = name

    def _ignore(self, name: str, value: Any, problem: str) -> None:
        self.warnings.append(f"{name} {problem} ({_shown(value)}); ignored")

    def flag(self, field: str, name: str | None, value: Any) -> None:
        if name is None or field in self.values:
            return
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            # Some instrumentations (LiteLLM) write booleans as "True"/"False".
            value = value.strip().lower() in _TRUE
        if not isinstance(value, bool):
            self._ignore(name, value, "is not true or false")
            return
        self._keep(field, name, value)

    def whole(self, field: str, name: str | None, value: Any, *, low: int, high: int, plus: int = 0) -> None:
        """A whole number within [low, high]; `plus` shifts it (a resend count is attempt - 1)."""
        if name is None or field in self.values:
            return
        number = whole_number(value)
        if number is None:
            self._ignore(name, value, "is not a whole number")
        elif not low <= number <= high:
            self._ignore(name, value, f"is outside {low}..{high}")
        else:
            self._keep(field, name, number + plus)

    def millis(self, field: str, name: str | None, value: Any, *, scale: float = 1.0) -> None:
        """A non-negative duration, in milliseconds once multiplied by `scale`."""
        if name is None or field in self.values:
            return
        number = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is None or not math.isfinite(number) or number < 0:
            self._ignore(name, value, "is not a non-negative number")
        elif number * scale > MAX_TIMEOUT_MS:
            self._ignore(name, value, "is longer than a week")
        else:
            self._keep(field, name, number * scale)

    def money(self, field: str, name: str | None, value: Any) -> None:
        if name is None or field in self.values:
            return
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self._ignore(name, value, "is not a number")
            return
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            self._ignore(name, value, "is not a number")
            return
        if problem := cost_problem(amount):
            self._ignore(name, value, problem)
            return
        self._keep(field, name, amount)

    def text(self, field: str, name: str | None, value: Any, *, limit: int = MAX_LABEL_LENGTH) -> None:
        if name is None or field in self.values:
            return
        if not isinstance(value, str) or not value.strip():
            self._ignore(name, value, "is not a non-empty string")
        elif len(value) > limit:
            # Cutting an id or a model name would point at something else: ignore it instead.
            self._ignore(name, value, f"is longer than {limit} characters")
        else:
            self._keep(field, name, value)

    def choice(self, field: str, name: str | None, value: Any, choices: tuple[str, ...]) -> None:
        if name is None or field in self.values:
            return
        if not isinstance(value, str) or value.strip().lower() not in choices:
            self._ignore(name, value, f"is not one of {', '.join(choices)}")
            return
        self._keep(field, name, value.strip().lower())

    # What every way in reads the same way.
    def cache_kind(self, name: str | None, value: Any) -> None:
        self.choice("cache_kind", name, value, CACHE_KINDS)

    def content_filter(self, name: str | None, value: Any) -> None:
        self.choice("content_filter", name, value, CONTENT_FILTER_OUTCOMES)

    def attempt(self, name: str | None, value: Any) -> None:
        self.whole("attempt", name, value, low=1, high=MAX_ATTEMPT)

    def http_status(self, name: str | None, value: Any) -> None:
        self.whole("http_status", name, value, low=100, high=599)

    def max_tokens(self, name: str | None, value: Any) -> None:
        self.whole("max_tokens", name, value, low=1, high=MAX_TOKENS)

    def retry_of(self, name: str | None, value: Any) -> None:
        self.text("retry_of", name, value, limit=MAX_ID_LENGTH)

    def metadata_key(self, key: str, name: str, value: Any) -> None:
        """A signal sent under its own name as a metadata key (`key` in METADATA_KEYS), the
        way Langfuse SDKs can carry it."""
        if key in ("cache_hit", "streamed"):
            self.flag(key, name, value)
        elif key == "cache_kind":
            self.cache_kind(name, value)
        elif key == "cache_saved_cost":
            self.money(key, name, value)
        elif key == "attempt":
            self.attempt(name, value)
        elif key == "retry_of":
            self.retry_of(name, value)
        elif key in ("fallback_from_provider", "fallback_from_model"):
            self.text(key, name, value)
        elif key == "http_status":
            self.http_status(name, value)
        elif key == "timeout_ms":
            self.millis(key, name, value)
        elif key == "content_filter":
            self.content_filter(name, value)

    def model_parameters(self, parameters: dict[str, Any], prefix: str) -> None:
        """Limit, streaming and timeout from request parameters as OpenAI-style clients name
        them; `prefix` is how a warning names the document they came in."""
        for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
            if key in parameters:
                self.max_tokens(f"{prefix}{key}", parameters[key])
        if "stream" in parameters:
            self.flag("streamed", f"{prefix}stream", parameters["stream"])
        if "timeout" in parameters:
            # The OpenAI and Anthropic clients take their timeout in seconds.
            self.millis("timeout_ms", f"{prefix}timeout", parameters["timeout"], scale=1000)

    def checked(self, *, span_id: str | None, provider: str | None, model: str | None) -> dict[str, Any]:
        """The values, less those that contradict each other or the call (the native API
        refuses the same contradictions)."""
        values, sources = self.values, self.sources

        def drop(field: str, problem: str) -> None:
            self._ignore(sources[field], values.pop(field), problem)

        if values.get("cache_hit") is False and "cache_kind" in values:
            drop("cache_kind", "is given but the call was not a cache hit")
        if "cache_saved_cost" in values and values.get("cache_hit") is not True and "cache_kind" not in values:
            drop("cache_saved_cost", "is only meaningful for a cache hit")
        if "retry_of" in values and values["retry_of"] == span_id:
            drop("retry_of", "names the call itself")
        if values.get("attempt") == 1 and "retry_of" in values:
            drop("attempt", "says first try but the call retries another")
        if (
            "fallback_from_model" in values
            and values["fallback_from_model"] == model
            and values.get("fallback_from_provider", provider) == provider
        ):
            drop("fallback_from_model", "is the call's own model: a fallback goes elsewhere")
        return values
