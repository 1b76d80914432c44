"""Token counts of one call, in the convention every price in Observatory uses."""

from __future__ import annotations

from decimal import Decimal

import msgspec


# A frozen msgspec Struct rather than a frozen dataclass: made once per priced call on the
# ingest path, and a frozen dataclass's constructor (object.__setattr__ per field) took 0.7 µs
# where this takes under 0.1.
class TokenUsage(msgspec.Struct, frozen=True):
    """input_tokens counts every prompt token, including those read from or written to the
    provider's cache (OpenAI's and the OpenTelemetry GenAI convention; Anthropic reports cache
    tokens separately and ingest adds them in). output_tokens includes reasoning tokens."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0

    @property
    def uncached_input_tokens(self) -> int:
        return max(0, self.input_tokens - self.cached_input_tokens - self.cache_write_tokens)

    def priced_with(self, *, input: Decimal, cached_input: Decimal, cache_write: Decimal, output: Decimal) -> Decimal:
        """The cost at these per-token rates."""
        return (
            self.uncached_input_tokens * input
            + self.cached_input_tokens * cached_input
            + self.cache_write_tokens * cache_write
            + self.output_tokens * output
        )
