"""Layering: which price applies to (provider, model, tier) at a moment, and for how long it stays valid.

Layers, lowest first: genai-prices, the shipped catalog, the user's override file. For the standard tier each
matching entry in force patches the rates below it, key by key. Entries with a `region` apply only to calls
served from a matching region (never to calls whose region is unknown) and are applied after every entry without
one, so a regional price wins in its region whichever file it is in (file order within each group). Another
tier's rates come from, in order of preference: entries for that tier (patched over what follows), genai-prices'
own prices for the tier, or the tier rule's multiplier applied to the standard rates. With none of those, the
call is priced at standard rates and the price says so (`tier="standard"`). Provider defaults then fill missing
rates; the last matching discount in force (override file last) comes off the total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from otel_ai_cost.pricing.genai_source import GenaiModel, GenaiSource
from otel_ai_cost.pricing.model_price import ModelPrice
from otel_ai_cost.pricing.price_file import ModelEntry, PriceFile
from otel_ai_cost.pricing.rate_set import RateSet
from otel_ai_cost.pricing.tiers import STANDARD

_NO_DISCOUNT = Decimal(0)


@dataclass(frozen=True)
class Resolution:
    """A resolved price (None: nobody prices this model) and the window in which it holds."""

    price: ModelPrice | None
    valid_from: datetime | None  # None: since always
    valid_until: datetime | None  # None: until further notice
    problem: str | None = None  # why there is no price
    note: str | None = None  # e.g. the tier fell back to standard


def normalize_model(model: str) -> str:
    """The model id as price data spells it: trimmed, lower-case, without API path prefixes."""
    ref = model.strip().lower()
    if "models/" in ref:  # Gemini "models/gemini-2.5-pro", Vertex "publishers/google/models/gemini-2.5-pro"
        ref = ref.rsplit("models/", 1)[1]
    if ref.startswith("arn:") and "/" in ref:  # Bedrock inference-profile or foundation-model ARN
        ref = ref.rsplit("/", 1)[1]
    return ref


class Resolver:
    """Composes a price from genai-prices and the price files (catalog first, overrides after)."""

    def __init__(self, genai: GenaiSource, files: Sequence[PriceFile]) -> None:
        self._genai = genai
        self._files = tuple(files)

    def resolve(self, provider: str, model: str, tier: str, at: datetime, region: str | None = None) -> Resolution:
        ref = normalize_model(model)
        found = self._genai.find(provider, ref)
        names = (ref,) if found is None or found.model_id == ref else (ref, found.model_id)
        region = region.strip().lower() if region else None
        entries = [
            (f.source, e) for f in self._files for e in f.models if e.matches(provider, names) and e.applies_in(region)
        ]
        entries.sort(key=lambda item: item[1].region is not None)  # stable: regional entries last, so they win
        valid_from, valid_until = self._window(at, provider, names, tier, found, entries)

        standard = self._genai.standard(found, at) if found is not None else None
        standard = _patched(standard, [(s, e) for s, e in entries if e.tier == STANDARD and e.in_force(at)])

        price_tier, note = tier, None
        if tier == STANDARD:
            rates = standard
        else:
            derived = self._genai.tier(found, tier, at) if found is not None else None
            if derived is None and standard is not None:
                derived = self._tier_rule(provider, tier, at, standard)
            explicit = [(s, e) for s, e in entries if e.tier == tier and e.in_force(at)]
            rates = _patched(derived if derived is not None else standard, explicit) if explicit else derived
            if rates is None and standard is not None:
                rates, price_tier = standard, STANDARD
                note = f"no {tier} prices for {provider} {model}: priced at standard rates"
        if rates is None:
            return Resolution(None, valid_from, valid_until, problem=f"no price for {provider} model {model!r}")

        for f in self._files:
            for default in f.defaults:
                if default.provider == provider and default.in_force(at):
                    rates.fill(default, f.source)
        price = rates.freeze(
            provider=provider,
            model=model,
            tier=price_tier,
            discount_percent=self._discount(provider, names, price_tier, at),
            effective_from=valid_from,
            effective_until=valid_until,
        )
        return Resolution(price, valid_from, valid_until, note=note)

    def _tier_rule(self, provider: str, tier: str, at: datetime, standard: RateSet) -> RateSet | None:
        rule, source = None, ""
        for f in self._files:  # later files (overrides) win
            for candidate in f.tiers:
                if candidate.provider == provider and candidate.tier == tier and candidate.in_force(at):
                    rule, source = candidate, f.source
        if rule is None:
            return None
        rates = standard.copy()
        rates.scale_tokens(rule.multiplier, source)
        return rates

    def _discount(self, provider: str, names: tuple[str, ...], tier: str, at: datetime) -> Decimal:
        percent = _NO_DISCOUNT
        for f in self._files:  # the last match wins: overrides come after the catalog
            for discount in f.discounts:
                if discount.matches(provider, names, tier) and discount.in_force(at):
                    percent = discount.percent
        return percent

    def _window(
        self,
        at: datetime,
        provider: str,
        names: tuple[str, ...],
        tier: str,
        found: GenaiModel | None,
        entries: list[tuple[str, ModelEntry]],
    ) -> tuple[datetime | None, datetime | None]:
        """The span around `at` in which none of the inputs to this (provider, model, tier) price changes."""
        moments = self._genai.boundaries(found, tier, at) if found is not None else []
        for _, entry in entries:
            if entry.tier in (STANDARD, tier):
                moments.extend(entry.boundaries())
        for f in self._files:
            for rule in f.tiers:
                if rule.provider == provider and rule.tier == tier:
                    moments.extend(rule.boundaries())
            for default in f.defaults:
                if default.provider == provider:
                    moments.extend(default.boundaries())
            for discount in f.discounts:
                if discount.covers(provider, names):
                    moments.extend(discount.boundaries())
        start = max((m for m in moments if m <= at), default=None)
        end = min((m for m in moments if m > at), default=None)
        return start, end


def _patched(rates: RateSet | None, entries: list[tuple[str, ModelEntry]]) -> RateSet | None:
    """`rates` with `entries` applied in file order; None when there is nothing at all."""
    if not entries:
        return rates
    out = rates.copy() if rates is not None else RateSet()
    for source, entry in entries:
        out.patch(entry, source)
    return out
