import random
import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import genai_prices
import pytest

from observatory.pricing.catalog import _exact_price, catalog_cost, catalog_rates
from observatory.pricing.models import PriceOverride
from observatory.pricing.services import PriceBook
from observatory.pricing.usage import TokenUsage

AT = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "model, provider, usage, expected",
    [
        # gpt-4o: $2.50 input, $1.25 cached input, $10 output per million tokens.
        ("gpt-4o", "openai", TokenUsage(input_tokens=1200, cached_input_tokens=200, output_tokens=300),
         Decimal(1000) * Decimal("2.5") / 10**6 + Decimal(200) * Decimal("1.25") / 10**6 + Decimal(300) * 10 / 10**6),
        # gpt-4o-mini: $0.15 input, $0.60 output.
        ("gpt-4o-mini", "openai", TokenUsage(input_tokens=10_000, output_tokens=1_000), Decimal("0.0021")),
        # claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 cache write, $15 output.
        ("claude-sonnet-4-5", "anthropic",
         TokenUsage(input_tokens=5000, cached_input_tokens=3000, cache_write_tokens=1000, output_tokens=500),
         Decimal(1000) * 3 / 10**6 + Decimal(3000) * Decimal("0.3") / 10**6 + Decimal(1000) * Decimal("3.75") / 10**6
         + Decimal(500) * 15 / 10**6),
        # gemini-2.5-flash via the OpenTelemetry provider name: $0.30 input, $2.50 output.
        ("gemini-2.5-flash", "gcp.gemini", TokenUsage(input_tokens=2000, output_tokens=400), Decimal("0.0016")),
        # text-embedding-3-small: $0.02 per million input tokens.
        ("text-embedding-3-small", "openai", TokenUsage(input_tokens=50_000), Decimal("0.001")),
    ],
)
def test_catalog_costs_match_hand_computed_prices(model, provider, usage, expected):
    assert catalog_cost(model=model, provider=provider, at=AT, usage=usage) == expected


def test_long_prompts_use_the_tiered_price():
    # Claude Sonnet 4.5 charges $6/$22.50 per million for every token once the prompt passes 200k.
    usage = TokenUsage(input_tokens=250_000, output_tokens=1000)
    assert catalog_cost(model="claude-sonnet-4-5", provider="anthropic", at=AT, usage=usage) == (
        Decimal(250_000) * 6 / 10**6 + Decimal(1000) * Decimal("22.5") / 10**6
    )


def test_unknown_model_has_no_price():
    assert catalog_cost(model="our-own-llama", provider="vllm", at=AT, usage=TokenUsage(input_tokens=10)) is None


def test_unlisted_provider_still_prices_a_known_model():
    assert catalog_rates(model="gpt-4o-mini", provider="my-gateway", day=AT.date()) is not None


def test_fast_path_agrees_with_genai_prices_across_the_catalogue():
    """The per-token rates we cache must give exactly what genai-prices computes."""
    rng = random.Random(7)
    snapshot = genai_prices.data_snapshot.get_snapshot()
    checked = 0
    for provider in snapshot.providers:
        for model in provider.models[:12]:
            rates = catalog_rates(model=model.id, provider=provider.id, day=AT.date())
            if rates is None or rates.provider_id != provider.id:
                continue
            for _ in range(3):
                input_tokens = rng.randrange(0, 150_000)
                cached = rng.randrange(0, input_tokens + 1)
                usage = TokenUsage(
                    input_tokens=input_tokens,
                    cached_input_tokens=cached,
                    cache_write_tokens=rng.randrange(0, input_tokens - cached + 1),
                    output_tokens=rng.randrange(0, 20_000),
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        exact = _exact_price(usage=usage, model=model.id, provider_id=provider.id, at=AT)
                    except (LookupError, ValueError):
                        continue
                assert catalog_cost(model=model.id, provider=provider.id, at=AT, usage=usage) == exact, (
                    provider.id, model.id, usage)
                checked += 1
    assert checked > 300


def test_override_wins_over_catalog_from_its_effective_date(project):
    PriceOverride.objects.create(project=project, model_pattern=r"gpt-4o(-.*)?", input_per_mtok=Decimal("1"),
                                 output_per_mtok=Decimal("2"), effective_from=datetime(2026, 10, 1, tzinfo=UTC))
    PriceOverride.objects.create(project=project, model_pattern=r"gpt-4o(-.*)?", input_per_mtok=Decimal("0.5"),
                                 output_per_mtok=Decimal("1"), cached_input_per_mtok=Decimal("0.1"),
                                 effective_from=datetime(2026, 11, 10, tzinfo=UTC))
    book = PriceBook(project=project)
    usage = TokenUsage(input_tokens=1_000_000, cached_input_tokens=500_000, output_tokens=1_000_000)

    october = book.price(model="gpt-4o", provider="openai", at=datetime(2026, 10, 20, tzinfo=UTC), usage=usage,
                         client_cost=None)
    november = book.price(model="gpt-4o-2024-08-06", provider="openai", at=datetime(2026, 11, 15, tzinfo=UTC),
                          usage=usage, client_cost=None)
    before = book.price(model="gpt-4o", provider="openai", at=datetime(2026, 9, 1, tzinfo=UTC), usage=usage,
                        client_cost=None)

    assert (october.cost, october.source) == (Decimal("3"), "override")  # cached input at the input price
    assert (november.cost, november.source) == (Decimal("0.5") * Decimal("0.5") + Decimal("0.05") + 1, "override")
    assert before.source == "catalog"


def test_override_pattern_must_match_the_whole_name_and_the_provider(project):
    PriceOverride.objects.create(project=project, model_pattern="llama", provider="vllm", input_per_mtok=1,
                                 output_per_mtok=1, effective_from=datetime(2020, 1, 1, tzinfo=UTC))
    book = PriceBook(project=project)
    usage = TokenUsage(input_tokens=10)
    assert book.price(model="llama", provider="vllm", at=AT, usage=usage, client_cost=None).source == "override"
    assert book.price(model="llama-3", provider="vllm", at=AT, usage=usage, client_cost=None).source == "unknown"
    assert book.price(model="llama", provider="together", at=AT, usage=usage, client_cost=None).source == "unknown"


def test_client_cost_wins_and_is_kept_to_twelve_places(project):
    priced = PriceBook(project=project).price(model="gpt-4o", provider="openai", at=AT, usage=TokenUsage(),
                                                    client_cost=Decimal("0.1234567890123456"))
    assert (priced.cost, priced.source) == (Decimal("0.123456789012"), "client")


def test_a_book_prices_every_moment_as_a_fresh_book_would(project, monkeypatch):
    """A book remembers what priced a model until an override takes over or the day ends: asked
    about moments in any order, around effective times and midnights, it answers as a book that
    remembers nothing."""
    import dataclasses

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from observatory.pricing import services

    real_rates = services.catalog_rates

    def rates_of_the_day(*, model, provider, day):  # the catalogue's prices change from day to day
        rates = real_rates(model=model, provider=provider, day=day)
        return rates and dataclasses.replace(rates, per_request=Decimal(day.toordinal() % 7))

    monkeypatch.setattr(services, "catalog_rates", rates_of_the_day)

    start = datetime(2026, 11, 9, 12, tzinfo=UTC)
    for hours, pattern, provider, rate in ((6, r"gpt-4o(-.*)?", "", "1"), (30, r"gpt-4o", "openai", "3"),
                                           (30, r"claude-.*", "", "2")):
        PriceOverride.objects.create(project=project, model_pattern=pattern, provider=provider, input_per_mtok=rate,
                                     output_per_mtok=rate, effective_from=start + timedelta(hours=hours))
    usage = TokenUsage(input_tokens=1200, cached_input_tokens=200, output_tokens=300)
    moment = st.one_of(st.integers(min_value=-48 * 3600, max_value=72 * 3600).map(lambda s: start + timedelta(seconds=s)),
                       st.sampled_from([start + timedelta(hours=h) + timedelta(microseconds=d)
                                        for h in (6, 12, 30, 36) for d in (-1, 0, 1)]))
    asks = st.lists(st.tuples(moment, st.sampled_from(["gpt-4o", "gpt-4o-mini", "claude-haiku-4-5", "unknown-model"]),
                              st.sampled_from(["openai", "anthropic", None])), min_size=1, max_size=30)

    @settings(max_examples=60, deadline=None)
    @given(asks)
    def check(questions):
        book = PriceBook(project=project)
        for at, model, provider in questions:
            fresh = PriceBook(project=project)
            assert book.price(model=model, provider=provider, at=at, usage=usage, client_cost=None) == fresh.price(
                model=model, provider=provider, at=at, usage=usage, client_cost=None), (at, model, provider)

    check()
