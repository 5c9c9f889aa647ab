"""Long-context tiers and effective dating: the price in force at the call's timestamp applies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pricing_helpers import NOW, d, utc

from otel_ai_cost.pricing.catalog import PriceCatalog, load_catalog
from otel_ai_cost.pricing.usage import Usage

# --- long context: above the threshold the WHOLE request is priced at the higher rates ---------------------


def test_claude_sonnet_4_long_context_from_the_catalog(catalog: PriceCatalog) -> None:
    # claude-sonnet-4 with the 1M window: input > 200K -> $6 in / $22.50 out for the whole request
    # (genai-prices 0.2.3 lacks this tier for Sonnet 4; our catalog adds it from 2025-08-12).
    # 250,000 x 6/1e6 = 1.5; 1,000 x 22.5/1e6 = 0.0225   total = 1.5225
    at = utc(2025, 9, 1)
    quote = catalog.quote("anthropic", "claude-sonnet-4-20250514", Usage(250_000, 1_000), at=at)
    assert quote.amount == d("1.5225")
    # Exactly 200,000 is not above the threshold: 200,000 x 3/1e6 = 0.6; 1,000 x 15/1e6 = 0.015 -> 0.615
    assert catalog.quote("anthropic", "claude-sonnet-4-0", Usage(200_000, 1_000), at=at).amount == d("0.615")
    # Before the 1M window existed the entry is not in force: 250,000 x 3/1e6 + 0.015 = 0.765
    before = catalog.quote("anthropic", "claude-sonnet-4-20250514", Usage(250_000, 1_000), at=utc(2025, 7, 1))
    assert before.amount == d("0.765")


def test_long_context_threshold_counts_cache_reads(catalog: PriceCatalog) -> None:
    # claude-sonnet-4-5: 210,000 input of which 200,000 cache reads -> total input > 200K: long-context rates
    # $6 in, $0.60 read, $22.50 out: 10,000 x 6/1e6 = 0.06; 200,000 x 0.6/1e6 = 0.12;
    # 1,000 x 22.5/1e6 = 0.0225   total = 0.2025
    usage = Usage(input_tokens=210_000, output_tokens=1_000, cache_read_input_tokens=200_000)
    quote = catalog.quote("anthropic", "claude-sonnet-4-5", usage, at=NOW)
    assert quote.amount == d("0.2025")
    assert dict(quote.components) == {"input": d("0.06"), "cache_read": d("0.12"), "output": d("0.0225")}


def test_gemini_2_5_pro_prompt_size_tiers(catalog: PriceCatalog) -> None:
    # gemini-2.5-pro: <= 200K prompt $1.25 in / $10 out; above, $2.50 in / $0.25 cached / $15 out.
    # short: 100,000 x 1.25/1e6 = 0.125; 10,000 x 10/1e6 = 0.1                     total = 0.225
    # long: 200,000 x 2.5/1e6 = 0.5; 100,000 x 0.25/1e6 = 0.025; 10,000 x 15/1e6 = 0.15   total = 0.675
    short = catalog.quote("gcp.gemini", "gemini-2.5-pro", Usage(100_000, 10_000), at=NOW)
    long = catalog.quote(
        "gcp.gemini", "gemini-2.5-pro", Usage(300_000, 10_000, cache_read_input_tokens=100_000), at=NOW
    )
    assert (short.amount, long.amount) == (d("0.225"), d("0.675"))


def test_batch_long_context_is_halved_too(catalog: PriceCatalog) -> None:
    # claude-sonnet-4 batch above 200K: 0.5 x ($6 in, $22.50 out): 250,000 x 3/1e6 = 0.75; 1,000 x 11.25/1e6
    # = 0.01125   total = 0.76125
    quote = catalog.quote("anthropic", "claude-sonnet-4-0", Usage(250_000, 1_000), at=NOW, service_tier="batch")
    assert quote.amount == d("0.76125")


# --- effective dating -------------------------------------------------------------------------------------


def test_o3_price_cut_on_2025_06_10(catalog: PriceCatalog) -> None:
    # o3 before 2025-06-10: $10 in / $40 out; from 2025-06-10 (UTC): $2 / $8.
    # before: 1,000,000 x 10/1e6 = 10; 100,000 x 40/1e6 = 4   total = 14
    # after:  1,000,000 x 2/1e6 = 2;   100,000 x 8/1e6 = 0.8  total = 2.8
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000)
    # Alternate, so each quote must notice its timestamp is outside the cached window and re-resolve.
    for _ in range(2):
        assert catalog.quote("openai", "o3", usage, at=utc(2025, 6, 9, 23, 59, 59)).amount == d("14")
        assert catalog.quote("openai", "o3", usage, at=utc(2025, 6, 10)).amount == d("2.8")
    assert catalog.quote("openai", "o3", usage, at=utc(2025, 5, 1)).amount == d("14")


def test_naive_timestamps_are_utc(catalog: PriceCatalog) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    assert catalog.quote("openai", "o3", usage, at=datetime(2025, 6, 9, 23, 0)).amount == d("10")
    assert catalog.quote("openai", "o3", usage, at=datetime(2025, 6, 10, 0, 0)).amount == d("2")


def test_resolved_price_carries_its_validity_window(catalog: PriceCatalog) -> None:
    before = catalog.resolve("openai", "o3-2025-04-16", at=utc(2025, 1, 1))
    after = catalog.resolve("openai", "o3", at=utc(2025, 7, 1))
    assert before is not None and after is not None
    assert (before.input, before.output) == (d("10"), d("40"))
    assert before.effective_until == utc(2025, 6, 10)
    assert (after.input, after.output) == (d("2"), d("8"))
    assert after.effective_from == utc(2025, 6, 10)
    assert after.source == "genai-prices"
    assert after.matched_model == "o3"


def test_override_entries_are_effective_dated(price_file: Callable[..., Path]) -> None:
    # A custom model whose price rose on 2026-03-01 (12:00 UTC): $1 / $2, then $1.50 / $3.
    path = price_file(
        """
models:
  - provider: acme
    model: acme-large
    prices: {input: 1, output: 2}
  - provider: acme
    model: acme-large
    effective_from: 2026-03-01T12:00:00Z
    prices: {input: 1.5, output: 3}
"""
    )
    catalog = load_catalog(path)
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    # before: 1 + 2 = 3; after: 1.5 + 3 = 4.5
    assert catalog.quote("acme", "acme-large", usage, at=utc(2026, 3, 1, 11, 59)).amount == d("3")
    assert catalog.quote("acme", "acme-large", usage, at=utc(2026, 3, 1, 12)).amount == d("4.5")
    assert catalog.quote("acme", "acme-large", usage, at=utc(2026, 1, 1)).amount == d("3")
    price = catalog.resolve("acme", "acme-large", at=utc(2026, 1, 1))
    assert price is not None and price.effective_until == utc(2026, 3, 1, 12)


def test_deepseek_off_peak_window_is_not_cached_across_the_boundary(catalog: PriceCatalog) -> None:
    # deepseek-chat in genai-prices: $0.27 in 00:30-16:30 UTC, $0.135 off-peak.
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    assert catalog.quote("deepseek", "deepseek-chat", usage, at=utc(2026, 11, 1, 12)).amount == d("0.27")
    assert catalog.quote("deepseek", "deepseek-chat", usage, at=utc(2026, 11, 1, 17)).amount == d("0.135")
    assert catalog.quote("deepseek", "deepseek-chat", usage, at=utc(2026, 11, 2, 12)).amount == d("0.27")
