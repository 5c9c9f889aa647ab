"""Shared constants and helpers for the pricing tests (a uniquely named module: tests/ has no packages)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import genai_prices

from otel_ai_cost.pricing.quote import Quote

# A moment after every price change the tests rely on (genai-prices 0.2.3 data, catalog 2026-11-22), and one
# before genai-prices' own batch/flex/priority prices start (2026-10-12/14), where our catalog's rules apply.
NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
BEFORE_GENAI_TIERS = datetime(2025, 9, 1, tzinfo=timezone.utc)
# The shipped catalog's version: the installed genai-prices (newer releases keep the prices the tests rely on,
# and name themselves in the version) plus our catalog's own.
SHIPPED_VERSION = f"genai-prices-{genai_prices.__version__}+catalog-2026-11-22.2"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def d(text: str) -> Decimal:
    return Decimal(text)


def assert_consistent(quote: Quote) -> None:
    """Components are exact Decimals, non-zero, and sum to the amount."""
    assert quote.amount is not None
    assert type(quote.amount) is Decimal
    assert all(type(v) is Decimal and v != 0 for v in quote.components.values())
    assert sum(quote.components.values(), Decimal(0)) == quote.amount
