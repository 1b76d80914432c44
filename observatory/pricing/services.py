"""Cost of a call: the client's figure, else the project's override, else the catalogue.

An unknown model is priced as unknown (cost NULL), never as $0, so that dashboards can count
unpriced calls instead of under-reporting spend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from observatory.audit.services import audit_record
from observatory.pricing.catalog import catalog_cost, genai_provider_id
from observatory.pricing.models import PriceOverride
from observatory.pricing.usage import TokenUsage
from observatory.tenancy.models import Project

PER_MILLION = Decimal(1_000_000)
COST_QUANTUM = Decimal("1e-12")


@dataclass(frozen=True)
class Priced:
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


class PriceBook:
    """Prices one project's calls: its overrides first, then the catalogue.

    Overrides are cached per process and keyed by the project's prices_changed_at, which every
    change to them bumps; the caller's project row (read once per request) says whether the
    cached copy is current, so no query is spent on them per batch.
    """

    _cache: dict[int, tuple[object, list[_CompiledOverride]]] = {}

    def __init__(self, *, project: Project) -> None:
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
        override = self._override_for(model=model, provider=provider, at=at)
        if override is not None:
            input_rate, cached_rate, write_rate, output_rate = override.rates
            cost = usage.priced_with(input=input_rate, cached_input=cached_rate, cache_write=write_rate, output=output_rate)
            return Priced(cost.quantize(COST_QUANTUM), "override")
        cost = catalog_cost(model=model, provider=provider, at=at, usage=usage)
        if cost is None:
            return Priced(None, "unknown")
        return Priced(cost.quantize(COST_QUANTUM), "catalog")

    def _override_for(self, *, model: str, provider: str | None, at: datetime) -> _CompiledOverride | None:
        provider_id = genai_provider_id(provider)
        for override in self._overrides:  # newest first
            if override.effective_from > at:
                continue
            if override.provider is not None and override.provider != provider_id:
                continue
            if override.pattern.fullmatch(model):
                return override
        return None


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
