"""Rates under composition: genai-prices' price, patched by catalog and override entries, then frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from otel_ai_cost.pricing.model_price import MONEY, TOKEN_CLASSES, LongContextTier, ModelPrice
from otel_ai_cost.pricing.price_file import ModelEntry, ProviderDefault

_PER_THOUSAND = Decimal(1000)
_MINUTES_PER_HOUR = Decimal(60)
_SOURCE_RANK = {"genai-prices": 0, "catalog": 1, "override": 2}


def per_call(per_thousand: Decimal) -> Decimal:
    """Providers publish call prices per thousand; we charge per call."""
    return MONEY.divide(per_thousand, _PER_THOUSAND)


@dataclass
class RateSet:
    """Mutable rates for one model and tier while layers are applied.

    `prices` are USD per million tokens by token class; `calls` USD per call; `hourly` USD per hour of audio by
    duration class; `tiers` maps a long-context
    threshold to the token rates that change once total input exceeds it (the others keep their base rate).
    """

    prices: dict[str, Decimal] = field(default_factory=dict)
    calls: dict[str, Decimal] = field(default_factory=dict)
    hourly: dict[str, Decimal] = field(default_factory=dict)
    tiers: dict[int, dict[str, Decimal]] = field(default_factory=dict)
    source: str = "genai-prices"
    matched_model: str = ""

    def copy(self) -> RateSet:
        return RateSet(
            prices=dict(self.prices),
            calls=dict(self.calls),
            hourly=dict(self.hourly),
            tiers={threshold: dict(rates) for threshold, rates in self.tiers.items()},
            source=self.source,
            matched_model=self.matched_model,
        )

    def contributed(self, source: str) -> None:
        """Record that a layer changed these rates: the highest such layer is the price's source."""
        if _SOURCE_RANK.get(source, 0) > _SOURCE_RANK.get(self.source, 0):
            self.source = source

    def patch(self, entry: ModelEntry, source: str) -> None:
        """Apply an entry: its rates replace ours key by key (all of ours when `replace` is set)."""
        if entry.replace:
            self.prices.clear()
            self.calls.clear()
            self.hourly.clear()
            self.tiers.clear()
        self.prices.update(entry.prices)
        self.calls.update({name: per_call(price) for name, price in entry.requests.items()})
        self.hourly.update({name: MONEY.multiply(price, _MINUTES_PER_HOUR) for name, price in entry.per_minute.items()})
        if entry.long_context is not None:
            self.tiers = {entry.long_context.threshold: dict(entry.long_context.prices)}
        self.matched_model = self.matched_model or entry.model
        self.contributed(source)

    def fill(self, default: ProviderDefault, source: str) -> None:
        """Add the rates we lack from a provider default; never overrides a rate we have."""
        changed = False
        for name, price in default.prices.items():
            if name not in self.prices:
                self.prices[name] = price
                changed = True
        for name, price in default.requests.items():
            if name not in self.calls:
                self.calls[name] = per_call(price)
                changed = True
        if changed:
            self.contributed(source)

    def scale_tokens(self, multiplier: Decimal, source: str) -> None:
        """Token rates (long-context ones included) times `multiplier`; per-call and duration prices are not
        tiered."""
        self.prices = {name: MONEY.multiply(price, multiplier) for name, price in self.prices.items()}
        self.tiers = {
            threshold: {name: MONEY.multiply(price, multiplier) for name, price in rates.items()}
            for threshold, rates in self.tiers.items()
        }
        self.contributed(source)

    def freeze(
        self,
        *,
        provider: str,
        model: str,
        tier: str,
        discount_percent: Decimal,
        effective_from: datetime | None,
        effective_until: datetime | None,
    ) -> ModelPrice:
        long_context = []
        rates = dict(self.prices)
        for threshold in sorted(self.tiers):
            # A tier keeps what lower tiers changed unless it changes it too.
            rates.update(self.tiers[threshold])
            long_context.append(LongContextTier(threshold, **{name: rates.get(name) for name in TOKEN_CLASSES}))
        return ModelPrice(
            provider=provider,
            model=model,
            matched_model=self.matched_model,
            tier=tier,
            **{name: self.prices.get(name) for name in TOKEN_CLASSES},
            per_request=self.calls.get("request"),
            per_web_search=self.calls.get("web_search"),
            per_hour_input_audio=self.hourly.get("input_audio"),
            long_context=tuple(long_context),
            discount_percent=discount_percent,
            effective_from=effective_from,
            effective_until=effective_until,
            source=self.source,
        )
