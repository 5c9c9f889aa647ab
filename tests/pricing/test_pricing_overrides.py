"""User override files merged over the shipped prices, custom models, discounts, and the process default."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pricing_helpers import NOW, SHIPPED_VERSION, assert_consistent, d

from otel_ai_cost.contract import Env, PricingStatus
from otel_ai_cost.pricing.catalog import default_catalog, load_catalog, reset_default_catalog
from otel_ai_cost.pricing.usage import Usage

WriteFile = Callable[..., Path]
GPT_4O_MINI_USAGE = Usage(input_tokens=10_000, output_tokens=1_000, cache_read_input_tokens=2_000)


def test_override_patches_one_rate_and_keeps_the_rest(price_file: WriteFile) -> None:
    # Override gpt-4o-mini input to $0.10; cached ($0.075) and output ($0.60) still come from genai-prices.
    # 8,000 x 0.1/1e6 = 0.0008; 2,000 x 0.075/1e6 = 0.00015; 1,000 x 0.6/1e6 = 0.0006   total = 0.00155
    path = price_file("models:\n  - {provider: openai, model: gpt-4o-mini, prices: {input: 0.10}}\n")
    catalog = load_catalog(path)
    quote = catalog.quote("openai", "gpt-4o-mini-2024-07-18", GPT_4O_MINI_USAGE, at=NOW)
    assert quote.amount == d("0.00155")
    price = catalog.resolve("openai", "gpt-4o-mini", at=NOW)
    assert price is not None and price.source == "override"
    sha = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert quote.version == f"{SHIPPED_VERSION}+overrides-{sha}"
    assert catalog.version == quote.version


def test_shipped_catalog_version() -> None:
    assert load_catalog().version == SHIPPED_VERSION


def test_custom_model_full_price_and_per_request_sku(price_file: WriteFile) -> None:
    path = price_file(
        """
models:
  - provider: openai
    model: "ft:gpt-4.1:acme:*"
    prices: {input: 3, cache_read: 0.75, output: 12}
  - provider: google.maps
    model: place-details-pro
    requests: {request: 17}
"""
    )
    catalog = load_catalog(path)
    # 8,000 x 3/1e6 = 0.024; 2,000 x 0.75/1e6 = 0.0015; 1,000 x 12/1e6 = 0.012   total = 0.0375
    quote = catalog.quote("openai", "ft:gpt-4.1:acme:support:abc123", GPT_4O_MINI_USAGE, at=NOW)
    assert quote.amount == d("0.0375")
    # A per-request SKU: $17 per 1,000 requests -> 0.017 per call.
    sku = catalog.quote("google.maps", "place-details-pro", Usage(), at=NOW)
    assert (sku.amount, dict(sku.components)) == (d("0.017"), {"request": d("0.017")})


def test_replace_drops_lower_layer_rates(price_file: WriteFile) -> None:
    # replace: true -> only the entry's rates; gpt-4o-mini then has no cached rate of its own, so cache reads
    # are billed at the (new) input rate: 10,000 x 0.2/1e6 = 0.002; 1,000 x 0.8/1e6 = 0.0008   total = 0.0028
    path = price_file(
        "models:\n  - {provider: openai, model: gpt-4o-mini, replace: true, prices: {input: 0.2, output: 0.8}}\n"
    )
    catalog = load_catalog(path)
    quote = catalog.quote("openai", "gpt-4o-mini", GPT_4O_MINI_USAGE, at=NOW)
    assert quote.amount == d("0.0028")
    price = catalog.resolve("openai", "gpt-4o-mini", at=NOW)
    assert price is not None and price.per_web_search == d("0.01")  # the provider default fills it back in


def test_discount_comes_off_every_component(price_file: WriteFile) -> None:
    # 15% off gpt-4.1*: gpt-4.1 standard 0.18 -> 0.153 (input 0.12 -> 0.102, cached 0.02 -> 0.017,
    # output 0.04 -> 0.034); gpt-4o-mini is not covered.
    path = price_file('discounts:\n  - {provider: openai, model: "gpt-4.1*", percent: 15}\n')
    catalog = load_catalog(path)
    usage = Usage(input_tokens=100_000, output_tokens=5_000, cache_read_input_tokens=40_000)
    quote = catalog.quote("openai", "gpt-4.1-2025-04-14", usage, at=NOW)
    assert quote.amount == d("0.153")
    assert dict(quote.components) == {"input": d("0.102"), "cache_read": d("0.017"), "output": d("0.034")}
    assert_consistent(quote)
    assert catalog.quote("openai", "gpt-4o-mini", GPT_4O_MINI_USAGE, at=NOW).amount == d("0.00195")


def test_per_minute_audio_price_and_discount_in_an_override(price_file: WriteFile) -> None:
    # A negotiated whisper-1 price of $0.005 a minute, then 10% off: 42 s x 0.005 / 60 = 0.0035, less 10% = 0.00315
    path = price_file(
        "models:\n  - {provider: openai, model: whisper-1, per_minute: {input_audio: 0.005}}\n"
        "discounts:\n  - {provider: openai, model: whisper-1, percent: 10}\n"
    )
    quote = load_catalog(path).quote("openai", "whisper-1", Usage(input_audio_seconds=42), at=NOW)
    assert quote.amount == d("0.00315")
    assert_consistent(quote)


def test_discount_by_tier_and_date(price_file: WriteFile) -> None:
    path = price_file(
        """
discounts:
  - {provider: "*", model: "*", percent: 10, tiers: [standard], effective_from: 2026-06-01}
  - {provider: anthropic, model: "claude-haiku-*", percent: 20, effective_from: 2026-06-01}
"""
    )
    catalog = load_catalog(path)
    usage = Usage(1_000, 1_000)
    # claude-haiku-4-5 standard 0.006: the later, more specific entry wins -> 20% off = 0.0048
    assert catalog.quote("anthropic", "claude-haiku-4-5", usage, at=NOW).amount == d("0.0048")
    # gpt-4o-mini 1,000 x 0.15/1e6 + 1,000 x 0.6/1e6 = 0.00075 -> 10% off = 0.000675; batch is not discounted
    # (batch: 1,000 x 0.075/1e6 + 1,000 x 0.3/1e6 = 0.000375)
    assert catalog.quote("openai", "gpt-4o-mini", usage, at=NOW).amount == d("0.000675")
    assert catalog.quote("openai", "gpt-4o-mini", usage, at=NOW, service_tier="batch").amount == d("0.000375")
    # Not yet in force in May.
    assert catalog.quote("openai", "gpt-4o-mini", usage, at=NOW.replace(month=5)).amount == d("0.00075")


def test_override_tier_rule_and_tier_entry(price_file: WriteFile) -> None:
    path = price_file(
        """
tiers:
  - {provider: anthropic, tier: priority, multiplier: 1}
models:
  - {provider: openai, model: gpt-4.1, tier: batch, prices: {input: 0.9}}
"""
    )
    catalog = load_catalog(path)
    # Anthropic priority now has a rule (1x): priced as "priority" at list price, 0.006.
    quote = catalog.quote("anthropic", "claude-haiku-4-5", Usage(1_000, 1_000), at=NOW, service_tier="priority")
    assert (quote.tier, quote.amount) == ("priority", d("0.006"))
    # The batch entry patches over genai-prices' batch prices ($1 -> $0.90 input, $4 output, $0.50 cached):
    # 60,000 x 0.9/1e6 = 0.054; 40,000 x 0.5/1e6 = 0.02; 5,000 x 4/1e6 = 0.02   total = 0.094
    usage = Usage(input_tokens=100_000, output_tokens=5_000, cache_read_input_tokens=40_000)
    assert catalog.quote("openai", "gpt-4.1", usage, at=NOW, service_tier="batch").amount == d("0.094")


def test_default_catalog_reads_the_env_file_once(price_file: WriteFile, monkeypatch: pytest.MonkeyPatch) -> None:
    path = price_file("models:\n  - {provider: acme, model: acme-1, prices: {input: 1, output: 1}}\n")
    monkeypatch.setenv(Env.PRICES_FILE, str(path))
    reset_default_catalog()
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(default_catalog())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(catalog) for catalog in seen}) == 1
    catalog = default_catalog()
    assert catalog is seen[0]
    assert "+overrides-" in catalog.version
    assert catalog.quote("acme", "acme-1", Usage(1_000_000, 0), at=NOW).amount == d("1")
    reset_default_catalog()
    assert default_catalog() is not catalog


def test_default_catalog_ignores_a_bad_env_file_loudly(
    price_file: WriteFile, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = price_file("models:\n  - {provider: acme, model: acme-1, prices: {input: cheap}}\n")
    monkeypatch.setenv(Env.PRICES_FILE, str(path))
    caplog.set_level(logging.ERROR, logger="otel_ai_cost.pricing")
    catalog = default_catalog()
    assert catalog.version == SHIPPED_VERSION
    assert any(f"{path}:2: models[0].prices.input" in r.getMessage() for r in caplog.records)
    assert catalog.quote("openai", "gpt-4o-mini", GPT_4O_MINI_USAGE, at=NOW).status is PricingStatus.PRICED
