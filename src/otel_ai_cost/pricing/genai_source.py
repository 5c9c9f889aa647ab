"""Adapter to pydantic's genai-prices: find a model, read its dated prices into a `RateSet`.

We use genai-prices' data and matching rules, not its `calc_price` (about 110 us a call): a model's price is
read once per validity window and cached by the catalog. Names used here are genai-prices 0.2.3's
(`DataSnapshot.find_provider_model`, `ModelInfo.get_prices`, `ModelInfo.price_variants`, `ModelPrice`'s
`*_mtok` / `*_kcount` keys, `StartDateConstraint`, `TimeOfDateConstraint`, `TieredPrices`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

import genai_prices
from genai_prices import data_snapshot, types

from otel_ai_cost.pricing.rate_set import RateSet, per_call
from otel_ai_cost.pricing.tiers import BATCH, FLEX, PRIORITY

# OTel `gen_ai.provider.name` -> genai-prices provider id. Explicit, because genai-prices' own fuzzy provider
# matching would send e.g. "azure.ai.openai" to OpenAI (its match rule is "contains 'openai'").
PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "x_ai": "x-ai",
    "perplexity": "perplexity",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral_ai": "mistral",
    "cohere": "cohere",
}

# genai-prices selects tier prices ("price variants") by request context.
_TIER_CONTEXT: dict[str, dict[str, str]] = {
    BATCH: {"processing": "batch"},
    FLEX: {"service_tier": "flex"},
    PRIORITY: {"service_tier": "priority"},
}

# Our token classes -> genai-prices price keys, most specific first. genai-prices' generic cache write
# (`cache_write_mtok`) is what both TTLs cost when a model has no TTL-specific price (Anthropic lists the
# 5-minute price there and the 1-hour price in `cache_write_1h_mtok`).
_TOKEN_KEYS: dict[str, tuple[str, ...]] = {
    "input": ("input_mtok",),
    "output": ("output_mtok",),
    "cache_read": ("cache_read_mtok",),
    "cache_write_5m": ("cache_write_5m_mtok", "cache_write_mtok"),
    "cache_write_1h": ("cache_write_1h_mtok", "cache_write_mtok"),
    "reasoning": ("output_reasoning_mtok",),
    "input_image": ("input_image_mtok",),
    "input_audio": ("input_audio_mtok",),
    "output_image": ("output_image_mtok",),
    "output_audio": ("output_audio_mtok",),
}
_CALL_KEYS: dict[str, str] = {"web_search": "web_searches_kcount", "request": "requests_kcount"}
_HOURLY_KEYS: dict[str, tuple[str, ...]] = {"input_audio": ("input_audio_hours", "audio_hours")}


@dataclass(frozen=True)
class GenaiModel:
    provider: types.Provider
    info: types.ModelInfo
    own: bool  # the provider's own entry (not borrowed via fallback): only then do its tier variants apply

    @property
    def model_id(self) -> str:
        return self.info.id.lower()


class GenaiSource:
    """One pinned genai-prices data snapshot."""

    def __init__(self, snapshot: data_snapshot.DataSnapshot | None = None) -> None:
        self._snapshot = snapshot or data_snapshot.get_snapshot()
        self.version = f"genai-prices-{genai_prices.__version__}"
        if self._snapshot.from_auto_update:  # UpdatePrices swapped in newer data than the installed package's
            self.version += f"~{self._snapshot.timestamp:%Y%m%dT%H%M%S}"

    def find(self, provider: str, model_ref: str) -> GenaiModel | None:
        """The model genai-prices prices for `model_ref` at `provider`, if any."""
        provider_id = PROVIDER_IDS.get(provider)
        if provider_id is None:
            # Unmapped ids are used only if they are a genai-prices provider id exactly (e.g. "openrouter").
            if not any(p.id == provider for p in self._snapshot.providers):
                return None
            provider_id = provider
        try:
            found, info = self._snapshot.find_provider_model(model_ref, None, provider_id, None)
        except LookupError:
            return None
        return GenaiModel(found, info, own=any(info is model for model in found.models))

    def standard(self, model: GenaiModel, at: datetime) -> RateSet:
        """Standard-tier rates in force at `at`."""
        return _rate_set(model.info.get_prices(at), model.model_id)

    def tier(self, model: GenaiModel, tier: str, at: datetime) -> RateSet | None:
        """Rates for `tier` if genai-prices has a non-empty variant for it in force at `at`, else None."""
        context = _TIER_CONTEXT.get(tier)
        if context is None or not model.own:
            return None
        for variant in model.info.price_variants or ():
            if variant.constraint is not None and not variant.constraint.active(at):
                continue
            if all(context.get(key) == value for key, value in variant.when.items()) and _has_prices(variant.prices):
                return _rate_set(model.info.get_prices(at, context), model.model_id)
        return None

    def boundaries(self, model: GenaiModel, tier: str, at: datetime) -> list[datetime]:
        """Moments around `at` where this model's genai-prices price for `tier` may change."""
        conditional = model.info.prices if isinstance(model.info.prices, list) else []
        constraints = [price.constraint for price in conditional]
        context = _TIER_CONTEXT.get(tier)
        if context is not None:
            constraints += [
                variant.constraint
                for variant in model.info.price_variants or ()
                if all(context.get(key) == value for key, value in variant.when.items())
            ]
        moments: list[datetime] = []
        for constraint in constraints:
            if isinstance(constraint, types.StartDateConstraint):
                day = constraint.start_date  # active from that UTC date on
                moments.append(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
            elif isinstance(constraint, types.TimeOfDateConstraint):
                moments.extend(_daily(at, (constraint.start_time, constraint.end_time)))
        return moments


def _daily(at: datetime, times: Iterable[time]) -> list[datetime]:
    """Occurrences of UTC times of day on the days around `at` (off-peak windows repeat daily)."""
    day = at.astimezone(timezone.utc).date()
    out = []
    for moment in times:
        utc = moment if moment.tzinfo is None else datetime.combine(day, moment).astimezone(timezone.utc).timetz()
        for offset in (-1, 0, 1):
            d = day + timedelta(days=offset)
            out.append(datetime.combine(d, utc.replace(tzinfo=None), tzinfo=timezone.utc))
    return out


def _has_prices(price: types.ModelPrice) -> bool:
    # genai-prices 0.2.3 ships some empty variants (e.g. gpt-3.5-turbo-1106 batch), which would silently
    # price a tier at standard rates; we treat them as absent so our tier rules apply instead.
    return any(value is not None for key, value in price.__dict__.items() if not key.startswith("_"))


def _rate_set(price: types.ModelPrice, model_id: str) -> RateSet:
    rates = RateSet(source="genai-prices", matched_model=model_id)
    for name, keys in _TOKEN_KEYS.items():
        value = next((v for key in keys if (v := getattr(price, key, None)) is not None), None)
        if isinstance(value, types.TieredPrices):
            rates.prices[name] = value.base
            for tier in value.tiers:
                rates.tiers.setdefault(tier.start, {})[name] = tier.price
        elif isinstance(value, Decimal):
            rates.prices[name] = value
    for name, key in _CALL_KEYS.items():
        value = getattr(price, key, None)
        if isinstance(value, types.TieredPrices):
            value = value.base
        if isinstance(value, Decimal):
            rates.calls[name] = per_call(value)
    for name, keys in _HOURLY_KEYS.items():
        value = next((v for key in keys if isinstance(v := getattr(price, key, None), Decimal)), None)
        if value is not None:
            rates.hourly[name] = value
    return rates
