"""Prices from the genai-prices catalogue, at the speed ingest needs.

A genai-prices calculation takes about 100 µs, too slow to run per event at thousands of
events per second. Below a model's first price tier, though, its price is an affine function
of the token counts, so we ask genai-prices once per (provider, model, day) for the cost of a
few probe usages, derive the per-token rates from them, and multiply. Usage past a tier
threshold goes to genai-prices itself. tests/observatory/test_pricing.py checks the two agree
across the catalogue.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache

import genai_prices
from genai_prices.types import TieredPrices

from observatory.pricing.usage import TokenUsage

_PROBE = 1000

# OpenTelemetry GenAI provider names (gen_ai.provider.name / gen_ai.system) and other common
# spellings, mapped to genai-prices provider ids.
PROVIDER_ALIASES = {
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "amazon": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "azure_openai": "azure",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "gcp.vertex_ai": "google",
    "gemini": "google",
    "vertex_ai": "google",
    "vertexai": "google",
    "google_genai": "google",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "ibm.watsonx.ai": "ibm",
    "meta_llama": "meta",
}


@dataclass(frozen=True)
class Rates:
    """USD per token for each kind of token, plus a fixed per-request price."""

    per_request: Decimal
    input: Decimal
    cached_input: Decimal
    cache_write: Decimal
    output: Decimal
    # Above this many input tokens a tiered price applies and the rates above do not.
    linear_up_to_input_tokens: int | None
    provider_id: str
    model_id: str


def genai_provider_id(provider: str | None) -> str | None:
    if not provider:
        return None
    lowered = provider.strip().lower()
    return PROVIDER_ALIASES.get(lowered, lowered)


def _exact_price(*, usage: TokenUsage, model: str, provider_id: str | None, at: datetime) -> Decimal:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=usage.input_tokens,
                cache_read_tokens=usage.cached_input_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                output_tokens=usage.output_tokens,
            ),
            model,
            provider_id=provider_id,
            genai_request_timestamp=at,
        )
    return result.total_price


@lru_cache(maxsize=4096)
def _rates(model: str, provider_id: str | None, day: date) -> Rates | None:
    at = datetime.combine(day, time(12), tzinfo=UTC)

    def probe(**tokens: int) -> Decimal:
        return _exact_price(usage=TokenUsage(**tokens), model=model, provider_id=provider_id, at=at)

    try:
        found = _lookup(model=model, provider_id=provider_id, at=at)
    except LookupError:
        if provider_id is not None:
            # The provider may be one genai-prices does not list (a gateway, a self-hosted
            # proxy); the model name alone often still identifies the price.
            return _rates(model, None, day)
        return None
    tier_starts = [
        tier.start
        for value in vars(found.model_price).values()
        if isinstance(value, TieredPrices)
        for tier in value.tiers
    ]
    base = found.total_price
    return Rates(
        per_request=base,
        input=(probe(input_tokens=_PROBE) - base) / _PROBE,
        cached_input=(probe(input_tokens=_PROBE, cached_input_tokens=_PROBE) - base) / _PROBE,
        cache_write=(probe(input_tokens=_PROBE, cache_write_tokens=_PROBE) - base) / _PROBE,
        output=(probe(output_tokens=_PROBE) - base) / _PROBE,
        linear_up_to_input_tokens=min(tier_starts) if tier_starts else None,
        provider_id=found.provider.id,
        model_id=found.model.id,
    )


def _lookup(*, model: str, provider_id: str | None, at: datetime) -> genai_prices.types.PriceCalculation:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return genai_prices.calc_price(
            genai_prices.Usage(input_tokens=0, output_tokens=0), model, provider_id=provider_id,
            genai_request_timestamp=at,
        )


def catalog_load() -> None:
    """Load genai-prices' bundled catalogue now rather than on the first call priced (it
    builds some 16,000 objects, ~25 ms): web workers load it before freezing what they hold
    for the garbage collector (observatory/wsgi.py)."""
    try:
        _lookup(model="gpt-4o", provider_id="openai", at=datetime.now(UTC))
    except LookupError:
        pass  # a catalogue without that model is still loaded


def catalog_rates(*, model: str, provider: str | None, day: date) -> Rates | None:
    """The catalogue's rates for a model on a day, or None when the model is unknown."""
    return _rates(model.strip(), genai_provider_id(provider), day)


def catalog_cost(*, model: str, provider: str | None, at: datetime, usage: TokenUsage) -> Decimal | None:
    """The catalogue price of a call, or None when genai-prices does not know the model."""
    rates = catalog_rates(model=model, provider=provider, day=at.astimezone(UTC).date())
    return None if rates is None else catalog_cost_at(rates, at=at, usage=usage)


def catalog_cost_at(rates: Rates, *, at: datetime, usage: TokenUsage) -> Decimal:
    """The price of a call at the catalogue's `rates` for its model and day."""
    if rates.linear_up_to_input_tokens is not None and usage.input_tokens > rates.linear_up_to_input_tokens:
        return _exact_price(usage=usage, model=rates.model_id, provider_id=rates.provider_id, at=at)
    return rates.per_request + usage.priced_with(
        input=rates.input, cached_input=rates.cached_input, cache_write=rates.cache_write, output=rates.output
    )
