"""The catalog has current prices for Gemini's main models, under both Google providers.

Figures: genai-prices 0.2.3 (provider `google`), which follow https://ai.google.dev/gemini-api/docs/pricing
(paid tier, text input; USD per million tokens).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from otel_ai_cost.pricing.catalog import load_catalog

AT = datetime(2026, 3, 1, tzinfo=timezone.utc)

# model: (input, output, cache read, long-context threshold or None, (input, output, cache read) above it)
EXPECTED = {
    "gemini-2.5-pro": ("1.25", "10", "0.125", 200_000, ("2.5", "15", "0.25")),
    "gemini-2.5-flash": ("0.3", "2.5", "0.03", None, None),
    "gemini-2.5-flash-lite": ("0.1", "0.4", "0.01", None, None),
    "gemini-2.0-flash": ("0.1", "0.4", "0.025", None, None),
    "gemini-3-pro-preview": ("2", "12", "0.2", 200_000, ("4", "18", "0.4")),
    "gemini-3.1-pro-preview": ("2", "12", "0.2", 200_000, ("4", "18", "0.4")),
    "gemini-3-flash-preview": ("0.5", "3", "0.05", None, None),
}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.mark.parametrize("provider", ["gcp.gemini", "gcp.vertex_ai"])
@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_current_gemini_prices(catalog, provider, model):
    price = catalog.resolve(provider, model, at=AT)
    assert price is not None, model
    base_in, base_out, base_read, threshold, above = EXPECTED[model]
    assert (price.input, price.output, price.cache_read) == (Decimal(base_in), Decimal(base_out), Decimal(base_read))
    assert price.reasoning == price.output  # thinking is billed as output
    if threshold is None:
        assert price.long_context == ()
    else:
        [tier] = price.long_context
        assert tier.threshold == threshold
        assert (tier.input, tier.output, tier.cache_read) == tuple(Decimal(v) for v in above)


@pytest.mark.parametrize(
    "name",
    ["models/gemini-2.5-flash", "publishers/google/models/gemini-2.5-flash", "Gemini-2.5-Flash"],
)
def test_model_paths_resolve_to_the_model(catalog, name):
    price = catalog.resolve("gcp.gemini", name, at=AT)
    assert price is not None and price.matched_model == "gemini-2.5-flash"
    assert price.input == Decimal("0.3")
