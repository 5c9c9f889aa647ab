"""The result of pricing one call: an exact amount with its components and provenance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from otel_ai_cost.contract import CURRENCY, PricingReason, PricingStatus

_NO_COMPONENTS: Mapping[str, Decimal] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Quote:
    """What one call cost.

    `components` holds the non-zero parts of `amount`, keyed by `TokenType` values (`input`, `output`,
    `cache_read`, `cache_write_5m`, `cache_write_1h`, `reasoning`) plus `web_search` and `request`; they sum
    to `amount` exactly. `version` names the price data that produced the figure, `tier` the service tier
    whose prices were used.
    """

    status: PricingStatus  # PRICED or UNPRICED (the instrumentation sets NO_USAGE itself)
    amount: Decimal | None  # None when UNPRICED: never a silent $0
    currency: str
    components: Mapping[str, Decimal]
    version: str
    tier: str
    reason: PricingReason | None = None  # why UNPRICED, when the pricer knows better than "no price"

    @classmethod
    def unpriced(cls, version: str, tier: str = "standard", reason: PricingReason | None = None) -> Quote:
        """A quote for usage we could not price."""
        return cls(PricingStatus.UNPRICED, None, CURRENCY, _NO_COMPONENTS, version, tier, reason)
