"""Cost of a call: the client's figure, else the project's override, else the catalogue.

An unknown model is priced as unknown (cost NULL), never as $0, so that dashboards can count
unpriced calls instead of under-reporting spend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from observatory.audit.services import audit_record
from observatory.pricing.catalog import Rates, catalog_cost_at, catalog_rates, genai_provider_id
from observatory.pricing.models import PriceOverride
from observatory.pricing.usage import TokenUsage
from observatory.tenancy.models import Project

PER_MILLION = Decimal(1_000_000)
COST_QUANTUM = Decimal("1e-12")


class Priced(NamedTuple):
    cost: Decimal | None
    source: str  # a CostSource value


@dataclass(frozen=True)
class _CompiledOverride:
    pattern: re.Pattern[str]
    provider: str | None
    effective_from: datetime
    rates: tuple[Decimal, Decimal, Decimal, Decimal]


def _compile_overrides(project_id: int) -> list[_CompiledOverride]:
    compiled = []
    for o in PriceOverride.objects.filter(project_id=project_id).order_by("-effective_from", "-id"):
        try:
            pattern = re.compile(o.model_pattern)
        except re.error:
            continue  # validated on save; a row written around validation must not break ingest
        compiled.append(
            _CompiledOverride(
                pattern=pattern,
                provider=genai_provider_id(o.provider) if o.provider else None,
                effective_from=o.effective_from,
                rates=tuple(
                    rate / PER_MILLION
                    for rate in (
                        o.input_per_mtok,
                        o.input_per_mtok if o.cached_input_per_mtok is None else o.cached_input_per_mtok,
                        o.input_per_mtok if o.cache_write_per_mtok is None else o.cache_write_per_mtok,
                        o.output_per_mtok,
                    )
                ),
            )
        )
    return compiled


_NO_END = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _RateCard:
    """How one model and provider are priced from `valid_from` until `valid_until`: by an
    override's rates, by the catalogue's (`catalog`: Rates, or None for a model it does not
    know), and in no other way in between."""

    valid_from: datetime
    valid_until: datetime
    override: _CompiledOverride | None = None
    catalog: Rates | None = None


class PriceBook:
    """Prices one project's calls: its overrides first, then the catalogue.

    Overrides are cached per process and keyed by the project's prices_changed_at, which every
    change to them bumps; the caller's project row (read once per request) says whether the
    cached copy is current, so no query is spent on them per batch.

    Which override or catalogue entry prices a model changes only at an override's effective
    time or at midnight UTC (the catalogue's prices are per day), so a book remembers, per
    model and provider, what prices it and until when: most calls of a batch are then priced
    with one lookup and a few multiplications.
    """

    _cache: dict[int, tuple[object, list[_CompiledOverride]]] = {}

    def __init__(self, *, project: Project) -> None:
        self._cards: dict[tuple[str, str | None], _RateCard] = {}
        cached = self._cache.get(project.pk)
        if cached is not None and cached[0] == project.prices_changed_at:
            self._overrides = cached[1]
            return
        self._overrides = _compile_overrides(project.pk)
        self._cache[project.pk] = (project.prices_changed_at, self._overrides)

    def price(
        self, *, model: str | None, provider: str | None, at: datetime, usage: TokenUsage, client_cost: Decimal | None
    ) -> Priced:
        if client_cost is not None:
            return Priced(client_cost.quantize(COST_QUANTUM), "client")
        if not model:
            return Priced(None, "unknown")
        card = self._cards.get((model, provider))
        if card is None or not card.valid_from <= at < card.valid_until:
            card = self._cards[(model, provider)] = self._card(model=model, provider=provider, at=at)
        if card.override is not None:
            input_rate, cached_rate, write_rate, output_rate = card.override.rates
            cost = usage.priced_with(input=input_rate, cached_input=cached_rate, cache_write=write_rate, output=output_rate)
            return Priced(cost.quantize(COST_QUANTUM), "override")
        rates = card.catalog
        if rates is None:
            return Priced(None, "unknown")
        cost = catalog_cost_at(rates, at=at, usage=usage)
        return Priced(cost.quantize(COST_QUANTUM), "catalog")

    def _card(self, *, model: str, provider: str | None, at: datetime) -> _RateCard:
        """What prices `model` at `at`, and the span of time around `at` it does so."""
        provider_id = genai_provider_id(provider)
        valid_until = _NO_END
        for override in self._overrides:  # newest first
            if override.provider is not None and override.provider != provider_id:
                continue
            if not override.pattern.fullmatch(model):
                continue
            if override.effective_from > at:
                valid_until = override.effective_from  # a newer one takes over then
                continue
            return _RateCard(valid_from=override.effective_from, valid_until=valid_until, override=override)
        day = at.astimezone(UTC).date()
        midnight = datetime.combine(day, time(0), tzinfo=UTC)
        # No override applies yet: the catalogue's rates of the day, until the day or the wait for
        # the next override ends.
        return _RateCard(valid_from=midnight, valid_until=min(valid_until, midnight + timedelta(days=1)),
                         catalog=catalog_rates(model=model, provider=provider, day=day))


# --- Settings pages: audited changes to a project's own prices ------------------------------

OVERRIDE_FIELDS = ("model_pattern", "provider", "input_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok",
                   "output_per_mtok", "effective_from")


def _override_details(override: PriceOverride) -> dict[str, str]:
    return {name: str(getattr(override, name)) for name in OVERRIDE_FIELDS if getattr(override, name) not in (None, "")}


def _check_fields(values: dict) -> None:
    unknown = set(values) - set(OVERRIDE_FIELDS)
    if unknown:
        raise TypeError(f"not a price override field: {', '.join(sorted(unknown))}")


@transaction.atomic
def price_override_create(*, project: Project, actor, **values) -> PriceOverride:
    """A new override (fields as in OVERRIDE_FIELDS; effective_from defaults to now). Ingest
    applies it from the next request on; calls already stored keep their cost."""
    _check_fields(values)
    values["effective_from"] = values.get("effective_from") or timezone.now()
    values["provider"] = values.get("provider") or ""
    override = PriceOverride(project=project, **values)
    override.full_clean()
    override.save()
    audit_record(actor=actor, organization=project.organization, project=project, action="price_override.create",
                 target=override.model_pattern, details=_override_details(override))
    return override


@transaction.atomic
def price_override_update(*, override: PriceOverride, actor, **values) -> PriceOverride:
    _check_fields(values)
    for name, value in values.items():
        setattr(override, name, value)
    override.full_clean()
    override.save()
    audit_record(actor=actor, organization=override.project.organization, project=override.project,
                 action="price_override.update", target=override.model_pattern, details=_override_details(override))
    return override


@transaction.atomic
def price_override_delete(*, override: PriceOverride, actor) -> None:
    project = override.project
    override.delete()
    audit_record(actor=actor, organization=project.organization, project=project, action="price_override.delete",
                 target=override.model_pattern)
