"""What the stand-in bills: the usage it served, per UTC day, for its billing endpoints to answer from.

Every successful answer of a model endpoint adds one `ServedUsage` (the provider module's `served_usage` reads it
from the answer). The billing endpoints (`openai_billing`, `anthropic_billing`) turn the book into the providers'
cost and usage reports, priced at the catalog's prices, so reconciling the demo's ledger against them matches.
Tests add usage of their own (`add`), for other days, accounts or tiers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otel_ai_cost.pricing.usage import Usage

__all__ = ["BillingBook", "ServedUsage"]


@dataclass(frozen=True, slots=True)
class ServedUsage:
    """One served call's usage, as the provider bills it. Token counts as the ledger's records count them:
    `input_tokens` includes cache reads and writes, `output_tokens` includes reasoning."""

    provider: str  # "openai" or "anthropic"
    day: date
    model: str
    input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_5m_input_tokens: int = 0
    cache_write_1h_input_tokens: int = 0
    output_tokens: int = 0
    web_search_requests: int = 0
    tier: str = ""  # standard ("") / batch / flex / priority
    account: str = ""  # OpenAI project id / Anthropic workspace id ("" = the default)
    api_key_id: str | None = "key_stand_in"  # None: a console (Workbench) call
    endpoint: str = ""  # the path that served it ("/v1/embeddings"); OpenAI reports embeddings apart

    def usage(self) -> Usage:
        """The call's usage as the catalog prices it."""
        from otel_ai_cost.pricing.usage import Usage  # the pricing package is heavy: only when a bill is asked

        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens,
            cache_write_5m_input_tokens=self.cache_write_5m_input_tokens,
            cache_write_1h_input_tokens=self.cache_write_1h_input_tokens,
            web_search_requests=self.web_search_requests,
        )

    @property
    def priced_at(self) -> datetime:
        """When the call is priced: noon UTC of its day (a price changing at a day's start applies)."""
        return datetime.combine(self.day, time(12), tzinfo=timezone.utc)


class BillingBook:
    """Thread-safe list of served usage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage: list[ServedUsage] = []

    def add(self, *usage: ServedUsage) -> None:
        with self._lock:
            self._usage.extend(usage)

    def usage(self, provider: str) -> list[ServedUsage]:
        with self._lock:
            return [entry for entry in self._usage if entry.provider == provider]

    def clear(self) -> None:
        with self._lock:
            self._usage.clear()

    def extend(self, usage: Iterable[ServedUsage]) -> None:
        self.add(*usage)


def today() -> date:
    return datetime.now(timezone.utc).date()
