"""The price catalog: resolve a model's price once per validity window, then quote calls from the cache.

`quote()` is on the hot path of the user's API calls: on a cache hit it is a dict lookup, a window check and
a few `Decimal` multiplications; it is thread-safe and never raises. Resolution (genai-prices lookup plus
layering, ~100+ us) runs under a lock, once per (provider, model, tier, region) and window. The region is part of
the key only when some price file has regional entries; otherwise it is dropped before the lookup, so calls
from many regions share one cache entry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from otel_ai_cost.contract import CURRENCY, Env, PricingReason, PricingStatus
from otel_ai_cost.pricing.model_price import MissingPriceError, ModelPrice
from otel_ai_cost.pricing.price_file import PriceFile, PriceFileError, load_price_file, parse_price_file
from otel_ai_cost.pricing.quote import Quote
from otel_ai_cost.pricing.tiers import STANDARD, tier_for
from otel_ai_cost.pricing.usage import Usage
from otel_ai_cost.telemetry.errors import report_internal_error

if TYPE_CHECKING:
    from otel_ai_cost.pricing.genai_source import GenaiSource

__all__ = [
    "PriceCatalog",
    "PriceFileError",
    "default_catalog",
    "load_catalog",
    "reset_default_catalog",
    "shipped_price_file",
]

logger = logging.getLogger("otel_ai_cost.pricing")

_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)
_LATEST = datetime.max.replace(tzinfo=timezone.utc)
_MAX_CACHED = 4096  # model names come from responses; bound the cache against junk ids
_SHIPPED_NAME = "otel_ai_cost/pricing/data/catalog.yaml"


class _Cached:
    """A resolution and the half-open window [start, end) in which it holds."""

    __slots__ = ("end", "note", "price", "problem", "start")

    def __init__(
        self, price: ModelPrice | None, start: datetime, end: datetime, problem: str | None, note: str | None
    ) -> None:
        self.price = price
        self.start = start
        self.end = end
        self.problem = problem
        self.note = note


class PriceCatalog:
    """Prices from genai-prices layered with the shipped catalog and optional user overrides."""

    version: str

    def __init__(self, files: Sequence[PriceFile], *, genai: GenaiSource | None = None) -> None:
        # Imported here: genai-prices' data takes ~0.2 s to import, which `otel-ai-cost --help` need not pay.
        from otel_ai_cost.pricing.genai_source import GenaiSource
        from otel_ai_cost.pricing.resolver import Resolver

        source = genai if genai is not None else GenaiSource()
        self.files: tuple[PriceFile, ...] = tuple(files)
        self.version = _version(source.version, self.files)
        self._resolver = Resolver(source, self.files)
        self._cache: dict[tuple[str, str, str, str | None], _Cached] = {}
        # Whether any entry is regional: if none is, the region cannot change a price and is left out of the key.
        self._regional = any(entry.region is not None for f in self.files for entry in f.models)
        self._lock = threading.Lock()
        self._warned: set[tuple[object, ...]] = set()

    def quote(
        self,
        provider: str,
        model: str,
        usage: Usage,
        *,
        at: datetime,
        service_tier: str | None = None,
        region: str | None = None,
        warn: bool = True,
    ) -> Quote:
        """The exact cost of one call; UNPRICED (logged once per provider and model, unless `warn` is False: a
        caller with another model to try) when unpriceable.

        `region` is the cloud region the call was served from, for providers that price by region (Bedrock).
        """
        tier = STANDARD
        try:
            if usage.malformed is not None:  # counts nobody knows: unpriced, never $0 (the recorder never asks this)
                return Quote.unpriced(self.version, tier, reason=PricingReason.MALFORMED_USAGE)
            tier = tier_for(service_tier)
            if tier is None:
                self._warn_once(
                    ("service_tier", service_tier),
                    "unknown service_tier %r (provider %s, model %s): priced as standard",
                    service_tier,
                    provider,
                    model,
                )
                tier = STANDARD
            if at.tzinfo is None:
                at = at.replace(tzinfo=timezone.utc)
            if not self._regional:
                region = None
            cached = self._cache.get((provider, model, tier, region))
            if cached is None or not (cached.start <= at < cached.end):
                cached = self._resolve(provider, model, tier, at, region)
            if cached.note and warn:  # a tier priced at standard rates: said once, whoever resolved it first
                self._warn_once((provider, model, tier), "%s", cached.note)
            price = cached.price
            if price is None:
                if warn:
                    self._warn_once((provider, model), "cannot price %s model %r: %s", provider, model, cached.problem)
                return Quote.unpriced(self.version, tier)
            amount, components = price.cost(usage)
            return Quote(PricingStatus.PRICED, amount, CURRENCY, components, self.version, price.tier)
        except MissingPriceError as exc:
            if warn:
                self._warn_once((provider, model), "cannot price %s model %r: %s", provider, model, exc)
        except Exception as exc:  # never let pricing break the user's call: a defect here, logged once and counted
            report_internal_error("pricing.quote", exc)
            return Quote.unpriced(self.version, tier or STANDARD, reason=PricingReason.PRICING_ERROR)
        return Quote.unpriced(self.version, tier or STANDARD)

    def resolve(
        self,
        provider: str,
        model: str,
        *,
        at: datetime,
        tier: str = STANDARD,
        region: str | None = None,
        warn: bool = True,
    ) -> ModelPrice | None:
        """The price in force at `at`, or None when nobody prices the model.

        `tier` is a pricing tier or a `service_tier` value as providers report it. The returned price's `tier`
        says which tier's rates it holds (standard when the tier has no prices of its own: logged once, unless
        `warn` is False, for a caller asking whether the tier exists). `region` is the cloud region the call is
        served from (entries with a `region` apply only there).
        """
        pricing_tier = tier_for(tier)
        if pricing_tier is None:
            raise ValueError(f"unknown tier {tier!r}")
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        if not self._regional:
            region = None
        cached = self._cache.get((provider, model, pricing_tier, region))
        if cached is None or not (cached.start <= at < cached.end):
            cached = self._resolve(provider, model, pricing_tier, at, region)
        if cached.note and warn:
            self._warn_once((provider, model, pricing_tier), "%s", cached.note)
        return cached.price

    def _resolve(self, provider: str, model: str, tier: str, at: datetime, region: str | None = None) -> _Cached:
        with self._lock:
            key = (provider, model, tier, region)
            cached = self._cache.get(key)
            if cached is not None and cached.start <= at < cached.end:  # another thread got here first
                return cached
            if region is None:
                found = self._resolver.resolve(provider, model, tier, at)
            else:
                found = self._resolver.resolve(provider, model, tier, at, region)
            cached = _Cached(
                found.price,
                found.valid_from or _EARLIEST,
                found.valid_until or _LATEST,
                found.problem,
                found.note,
            )
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[key] = cached
        return cached

    def _warn_once(self, key: tuple[object, ...], message: str, *args: object) -> None:
        if key in self._warned:
            return
        with self._lock:
            if key in self._warned or len(self._warned) >= _MAX_CACHED:
                return
            self._warned.add(key)
        logger.warning(message, *args)


def shipped_price_file() -> PriceFile:
    """The catalog shipped in the package (`pricing/data/catalog.yaml`)."""
    data = resources.files("otel_ai_cost.pricing").joinpath("data", "catalog.yaml").read_bytes()
    return parse_price_file(
        data.decode("utf-8"),
        filename=_SHIPPED_NAME,
        source="catalog",
        sha256=hashlib.sha256(data).hexdigest(),
    )


def load_catalog(overrides: str | Path | None = None) -> PriceCatalog:
    """The shipped catalog plus an optional override file; raises `PriceFileError` for a bad file."""
    files = [shipped_price_file()]
    if overrides:
        files.append(load_price_file(overrides, source="override"))
    return PriceCatalog(files)


_default: PriceCatalog | None = None
_default_lock = threading.Lock()


def default_catalog() -> PriceCatalog:
    """The process-wide catalog: shipped prices plus the file named by OTEL_AI_COST_PRICES_FILE.

    Never raises: a bad override file is logged as an error and ignored (the version string then has no
    `+overrides-` part); `otel-ai-cost prices check FILE` shows what is wrong with it.
    """
    global _default
    catalog = _default
    if catalog is None:
        with _default_lock:
            if _default is None:
                _default = _build_default()
            catalog = _default
    return catalog


def reset_default_catalog() -> None:
    """Forget the process-wide catalog (tests; after changing OTEL_AI_COST_PRICES_FILE)."""
    global _default
    with _default_lock:
        _default = None


def _build_default() -> PriceCatalog:
    path = os.environ.get(Env.PRICES_FILE, "").strip()
    if path:
        try:
            return load_catalog(path)
        except PriceFileError as exc:
            logger.error("ignoring %s: %s", Env.PRICES_FILE, exc)
    return load_catalog(None)


def _version(genai_version: str, files: Sequence[PriceFile]) -> str:
    parts = [genai_version]
    for f in files:
        if f.source == "catalog":
            parts.append(f"catalog-{f.version or f.sha256[:12]}")
        else:
            parts.append(f"overrides-{f.sha256[:12]}")
    return "+".join(parts)
