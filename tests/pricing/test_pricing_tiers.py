"""Service tiers: batch, flex and priority prices, and how reported service_tier strings map to them."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from pricing_helpers import BEFORE_GENAI_TIERS, NOW, assert_consistent, d

from otel_ai_cost.contract import PricingStatus
from otel_ai_cost.pricing.catalog import PriceCatalog
from otel_ai_cost.pricing.usage import Usage

GPT_41_USAGE = Usage(input_tokens=100_000, output_tokens=5_000, cache_read_input_tokens=40_000)
SONNET_USAGE = Usage(
    input_tokens=50_000,
    output_tokens=2_000,
    cache_read_input_tokens=20_000,
    cache_write_5m_input_tokens=15_000,
    cache_write_1h_input_tokens=5_000,
)


def test_openai_batch_is_half_price_by_catalog_rule(catalog: PriceCatalog) -> None:
    # Before genai-prices has batch prices: our rule, 0.5 x standard
    # ($2 / $0.50 cached / $8 -> $1 / $0.25 / $4).
    # 60,000 x 1/1e6 = 0.06; 40,000 x 0.25/1e6 = 0.01; 5,000 x 4/1e6 = 0.02   total = 0.09 (half of 0.18)
    quote = catalog.quote("openai", "gpt-4.1", GPT_41_USAGE, at=BEFORE_GENAI_TIERS, service_tier="batch")
    assert quote.tier == "batch"
    assert quote.amount == d("0.09")
    assert_consistent(quote)


def test_openai_batch_uses_genai_prices_tier_prices_when_it_has_them(catalog: PriceCatalog) -> None:
    # gpt-5 batch in genai-prices (from 2026-10-14): $0.625 in, $0.0625 cached, $5 out.
    # 60,000 x 0.625/1e6 = 0.0375; 40,000 x 0.0625/1e6 = 0.0025; 5,000 x 5/1e6 = 0.025   total = 0.065
    quote = catalog.quote("openai", "gpt-5", GPT_41_USAGE, at=NOW, service_tier="batch")
    assert quote.tier == "batch"
    assert quote.amount == d("0.065")


def test_anthropic_batch_halves_cache_writes_and_reads_but_not_web_search(catalog: PriceCatalog) -> None:
    # claude-sonnet-4 (no batch prices in genai-prices): our rule, 0.5 x every token rate.
    # standard: 0.03 + 0.006 + 0.05625 + 0.03 + 0.03 = 0.15225 -> batch 0.076125
    # plus 2 web searches at the standard $10 / 1,000 (no batch rate): 0.02      total = 0.096125
    usage = dataclasses.replace(SONNET_USAGE, web_search_requests=2)
    quote = catalog.quote("anthropic", "claude-sonnet-4-20250514", usage, at=NOW, service_tier="batch")
    assert quote.tier == "batch"
    assert quote.amount == d("0.096125")
    assert quote.components["cache_write_1h"] == d("0.015")  # 5,000 x 3/1e6
    assert quote.components["web_search"] == d("0.02")


def test_anthropic_batch_from_genai_prices(catalog: PriceCatalog) -> None:
    # claude-sonnet-4-5 batch in genai-prices: $1.50 / $0.15 read / $1.875 5m / $3 1h / $7.50 out.
    # 10,000 x 1.5 + 20,000 x 0.15 + 15,000 x 1.875 + 5,000 x 3 + 2,000 x 7.5, all /1e6 = 0.076125
    quote = catalog.quote("anthropic", "claude-sonnet-4-5", SONNET_USAGE, at=NOW, service_tier="batch")
    assert quote.amount == d("0.076125")


def test_openai_flex_is_batch_price(catalog: PriceCatalog) -> None:
    # o3 after its 2025-06-10 cut: $2 / $0.50 cached / $8; flex = 0.5 x: $1 / $0.25 / $4.
    # 6,000 x 1/1e6 = 0.006; 4,000 x 0.25/1e6 = 0.001; 1,000 x 4/1e6 = 0.004   total = 0.011
    usage = Usage(input_tokens=10_000, output_tokens=1_000, cache_read_input_tokens=4_000)
    for at in (
        BEFORE_GENAI_TIERS,
        NOW,
    ):  # our rule before genai-prices' flex prices, theirs after: same figure
        quote = catalog.quote("openai", "o3", usage, at=at, service_tier="flex")
        assert (quote.tier, quote.amount) == ("flex", d("0.011"))


def test_openai_priority_per_model_price(catalog: PriceCatalog) -> None:
    # gpt-4.1 priority: $3.50 in, $0.875 cached, $14 out (1.75x).
    # 60,000 x 3.5/1e6 = 0.21; 40,000 x 0.875/1e6 = 0.035; 5,000 x 14/1e6 = 0.07   total = 0.315
    for at in (BEFORE_GENAI_TIERS, NOW):
        quote = catalog.quote("openai", "gpt-4.1-2025-04-14", GPT_41_USAGE, at=at, service_tier="priority")
        assert (quote.tier, quote.amount) == ("priority", d("0.315"))


def test_openai_priority_multiplier_for_models_without_a_listed_price(catalog: PriceCatalog) -> None:
    # gpt-5-nano has no priority price anywhere: the catalog's 2x rule
    # ($0.05 -> $0.10 in, $0.40 -> $0.80 out).
    # 10,000 x 0.1/1e6 = 0.001; 1,000 x 0.8/1e6 = 0.0008   total = 0.0018
    quote = catalog.quote("openai", "gpt-5-nano", Usage(10_000, 1_000), at=NOW, service_tier="priority")
    assert (quote.tier, quote.amount) == ("priority", d("0.0018"))


@pytest.mark.parametrize("service_tier", [None, "default", "auto", "scale", "standard", "DEFAULT"])
def test_standard_service_tiers(catalog: PriceCatalog, service_tier: str | None) -> None:
    quote = catalog.quote("openai", "gpt-4.1", GPT_41_USAGE, at=NOW, service_tier=service_tier)
    assert (quote.tier, quote.amount) == ("standard", d("0.18"))


def test_tier_without_prices_falls_back_to_standard_and_says_so(
    catalog: PriceCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    # Anthropic Priority Tier is a capacity commitment with no per-token list price: standard rates, tier
    # "standard" on the quote, and one warning.
    caplog.set_level(logging.WARNING, logger="otel_ai_cost.pricing")
    for _ in range(3):
        quote = catalog.quote("anthropic", "claude-haiku-4-5", Usage(1_000, 1_000), at=NOW, service_tier="priority")
        assert (quote.status, quote.tier, quote.amount) == (PricingStatus.PRICED, "standard", d("0.006"))
    assert len([r for r in caplog.records if "no priority prices" in r.getMessage()]) == 1


def test_asking_whether_a_tier_exists_does_not_use_up_the_warning_of_a_call(
    catalog: PriceCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    # A report probing for batch prices (warn=False) comes first; a real call in that tier is still said once.
    caplog.set_level(logging.WARNING, logger="otel_ai_cost.pricing")
    price = catalog.resolve("anthropic", "claude-haiku-4-5", at=NOW, tier="priority", warn=False)
    assert price is not None and price.tier == "standard" and not caplog.records
    for _ in range(2):
        catalog.quote("anthropic", "claude-haiku-4-5", Usage(1_000, 1_000), at=NOW, service_tier="priority")
    assert len([r for r in caplog.records if "no priority prices" in r.getMessage()]) == 1


def test_unknown_service_tier_is_standard_with_one_warning(
    catalog: PriceCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_ai_cost.pricing")
    for _ in range(3):
        quote = catalog.quote("openai", "gpt-4.1", GPT_41_USAGE, at=NOW, service_tier="turbo")
        assert (quote.tier, quote.amount) == ("standard", d("0.18"))
    assert len([r for r in caplog.records if "turbo" in r.getMessage()]) == 1


def test_resolve_accepts_tier_names_and_reports_the_tier_it_priced(catalog: PriceCatalog) -> None:
    price = catalog.resolve("openai", "gpt-4o-mini", at=NOW, tier="priority")
    assert price is not None
    assert (price.tier, price.input, price.cache_read, price.output) == (
        "priority",
        d("0.25"),
        d("0.125"),
        d("1"),
    )
    assert price.source == "catalog"
    with pytest.raises(ValueError, match="unknown tier"):
        catalog.resolve("openai", "gpt-4o-mini", at=NOW, tier="platinum")
