"""Standard-tier costs, computed by hand from published prices (USD per million tokens unless noted)."""

from __future__ import annotations

import decimal
import threading
from datetime import datetime

import genai_prices
import pytest
from pricing_helpers import NOW, assert_consistent, d

from otel_ai_cost.contract import CURRENCY, PricingStatus
from otel_ai_cost.pricing.catalog import PriceCatalog
from otel_ai_cost.pricing.usage import Usage


def test_gpt_4o_mini_with_cached_input(catalog: PriceCatalog) -> None:
    # gpt-4o-mini: $0.15 in, $0.075 cached in, $0.60 out.
    # 10,000 input of which 2,000 cached: 8,000 x 0.15/1e6 = 0.0012; 2,000 x 0.075/1e6 = 0.00015
    # 1,000 output x 0.60/1e6 = 0.0006                         total = 0.00195
    usage = Usage(input_tokens=10_000, output_tokens=1_000, cache_read_input_tokens=2_000)
    quote = catalog.quote("openai", "gpt-4o-mini-2024-07-18", usage, at=NOW)
    assert quote.status is PricingStatus.PRICED
    assert quote.amount == d("0.00195")
    assert dict(quote.components) == {"input": d("0.0012"), "cache_read": d("0.00015"), "output": d("0.0006")}
    assert quote.currency == CURRENCY == "USD"
    assert quote.tier == "standard"
    assert quote.version == catalog.version
    assert_consistent(quote)


def test_gpt_4_1_with_cached_input(catalog: PriceCatalog) -> None:
    # gpt-4.1: $2 in, $0.50 cached, $8 out.
    # 60,000 x 2/1e6 = 0.12; 40,000 x 0.5/1e6 = 0.02; 5,000 x 8/1e6 = 0.04   total = 0.18
    usage = Usage(input_tokens=100_000, output_tokens=5_000, cache_read_input_tokens=40_000)
    quote = catalog.quote("openai", "gpt-4.1-2025-04-14", usage, at=NOW)
    assert quote.amount == d("0.18")
    assert dict(quote.components) == {"input": d("0.12"), "cache_read": d("0.02"), "output": d("0.04")}


def test_o4_mini_reasoning_is_a_component_billed_at_the_output_rate(catalog: PriceCatalog) -> None:
    # o4-mini: $1.10 in, $4.40 out; reasoning is part of output and billed at the output rate.
    # 2,000 x 1.1/1e6 = 0.0022; plain output 500 x 4.4/1e6 = 0.0022; reasoning 2,500 x 4.4/1e6 = 0.011
    # total = 0.0154
    usage = Usage(input_tokens=2_000, output_tokens=3_000, reasoning_output_tokens=2_500)
    quote = catalog.quote("openai", "o4-mini-2025-04-16", usage, at=NOW)
    assert quote.amount == d("0.0154")
    assert dict(quote.components) == {"input": d("0.0022"), "output": d("0.0022"), "reasoning": d("0.011")}


def test_claude_sonnet_4_5_cache_read_and_both_cache_write_ttls(catalog: PriceCatalog) -> None:
    # claude-sonnet-4-5: $3 in, $0.30 cache read, $3.75 5m write, $6 1h write, $15 out.
    # input 50,000 = 10,000 uncached + 20,000 read + 15,000 5m write + 5,000 1h write
    # 10,000 x 3/1e6 = 0.03; 20,000 x 0.3/1e6 = 0.006; 15,000 x 3.75/1e6 = 0.05625; 5,000 x 6/1e6 = 0.03
    # output 2,000 x 15/1e6 = 0.03                                              total = 0.15225
    usage = Usage(
        input_tokens=50_000,
        output_tokens=2_000,
        cache_read_input_tokens=20_000,
        cache_write_5m_input_tokens=15_000,
        cache_write_1h_input_tokens=5_000,
    )
    quote = catalog.quote("anthropic", "claude-sonnet-4-5-20250929", usage, at=NOW, service_tier="standard")
    assert quote.amount == d("0.15225")
    assert dict(quote.components) == {
        "input": d("0.03"),
        "cache_read": d("0.006"),
        "cache_write_5m": d("0.05625"),
        "cache_write_1h": d("0.03"),
        "output": d("0.03"),
    }
    assert_consistent(quote)


def test_claude_sonnet_4_web_search_requests(catalog: PriceCatalog) -> None:
    # claude-sonnet-4: $3 in, $15 out; web search $10 per 1,000 searches.
    # 1,000 x 3/1e6 = 0.003; 500 x 15/1e6 = 0.0075; 3 searches x 10/1000 = 0.03   total = 0.0405
    usage = Usage(input_tokens=1_000, output_tokens=500, web_search_requests=3)
    quote = catalog.quote("anthropic", "claude-sonnet-4-20250514", usage, at=NOW)
    assert quote.amount == d("0.0405")
    assert quote.components["web_search"] == d("0.03")


def test_claude_haiku_4_5(catalog: PriceCatalog) -> None:
    # claude-haiku-4-5: $1 in, $5 out. 1,000 x 1/1e6 = 0.001; 1,000 x 5/1e6 = 0.005   total = 0.006
    quote = catalog.quote("anthropic", "claude-haiku-4-5-20251001", Usage(1_000, 1_000), at=NOW)
    assert quote.amount == d("0.006")


def test_openai_web_search_tool_calls(catalog: PriceCatalog) -> None:
    # gpt-4o-mini + 2 web search calls at $10 / 1,000:
    # 1,000 x 0.15/1e6 = 0.00015; 100 x 0.6/1e6 = 0.00006; 2 x 0.01 = 0.02   total = 0.02021
    usage = Usage(input_tokens=1_000, output_tokens=100, web_search_requests=2)
    quote = catalog.quote("openai", "gpt-4o-mini", usage, at=NOW)
    assert quote.amount == d("0.02021")
    assert quote.components["web_search"] == d("0.02")


def test_per_request_fee(catalog: PriceCatalog) -> None:
    # Perplexity sonar-pro in genai-prices: $3 in, $15 out, $14 per 1,000 requests.
    # 1,000 x 3/1e6 = 0.003; 1,000 x 15/1e6 = 0.015; one request 14/1000 = 0.014   total = 0.032
    quote = catalog.quote("perplexity", "sonar-pro", Usage(1_000, 1_000), at=NOW)
    assert quote.amount == d("0.032")
    assert quote.components["request"] == d("0.014")


def test_whisper_is_priced_per_minute_of_audio(catalog: PriceCatalog) -> None:
    # whisper-1 in genai-prices: $0.36 an hour = $0.006 a minute. 90.5 s x 0.36 / 3600 = 0.00905
    quote = catalog.quote("openai", "whisper-1", Usage(input_audio_seconds=d("90.5")), at=NOW)
    assert quote.amount == d("0.00905")
    assert dict(quote.components) == {"input_audio_seconds": d("0.00905")}


def test_a_duration_amount_without_a_finite_decimal_is_rounded_to_a_picodollar(catalog: PriceCatalog) -> None:
    # Groq whisper-large-v3-turbo: $0.04 an hour. 7 s x 0.04 / 3600 = 0.0000777... -> 0.000077777778
    quote = catalog.quote("groq", "whisper-large-v3-turbo", Usage(input_audio_seconds=7), at=NOW)
    assert quote.amount == d("0.000077777778")
    assert_consistent(quote)


@pytest.mark.parametrize(
    ("provider", "alias", "dated"),
    [
        ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("openai", "o3", "o3-2025-04-16"),
        ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
        ("anthropic", "claude-sonnet-4-0", "claude-sonnet-4-20250514"),
        ("anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001"),
        ("gcp.gemini", "gemini-2.5-pro", "models/gemini-2.5-pro"),
    ],
)
def test_request_alias_and_response_id_price_the_same(
    catalog: PriceCatalog, provider: str, alias: str, dated: str
) -> None:
    usage = Usage(input_tokens=12_345, output_tokens=678, cache_read_input_tokens=1_000)
    by_alias = catalog.quote(provider, alias, usage, at=NOW)
    by_dated = catalog.quote(provider, dated, usage, at=NOW)
    assert by_alias.status is PricingStatus.PRICED
    assert by_alias.amount == by_dated.amount
    assert by_alias.amount > 0


@pytest.mark.parametrize(
    ("provider", "genai_provider", "model", "usage"),
    [
        ("openai", "openai", "gpt-4o-mini", Usage(10_000, 1_000, cache_read_input_tokens=2_000)),
        ("openai", "openai", "gpt-4.1", Usage(100_000, 5_000, cache_read_input_tokens=40_000)),
        ("openai", "openai", "o3", Usage(7_000, 9_000, reasoning_output_tokens=8_000)),
        ("anthropic", "anthropic", "claude-sonnet-4-5", Usage(50_000, 2_000, 20_000, 15_000, 5_000)),
        ("anthropic", "anthropic", "claude-opus-4-1", Usage(3_000, 700, cache_write_1h_input_tokens=1_000)),
        ("gcp.gemini", "google", "gemini-2.5-flash", Usage(9_000, 4_000, cache_read_input_tokens=3_000)),
        ("x_ai", "x-ai", "grok-4", Usage(5_000, 1_500, cache_read_input_tokens=500)),
        ("aws.bedrock", "aws", "us.anthropic.claude-sonnet-4-20250514-v1:0", Usage(4_000, 800)),
        ("deepseek", "deepseek", "deepseek-chat", Usage(4_000, 800, cache_read_input_tokens=1_000)),
    ],
)
def test_standard_prices_agree_with_genai_prices_own_calculation(
    catalog: PriceCatalog, provider: str, genai_provider: str, model: str, usage: Usage
) -> None:
    # Cross-check: on models our catalog does not touch, our fast path gives genai-prices' exact figure.
    theirs = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_input_tokens,
            cache_write_tokens=usage.cache_creation_input_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_input_tokens,
        ),
        model,
        provider_id=genai_provider,
        genai_request_timestamp=NOW,
    )
    assert catalog.quote(provider, model, usage, at=NOW).amount == theirs.total_price


def test_amounts_are_exact_whatever_the_threads_decimal_context(catalog: PriceCatalog) -> None:
    # 123,457 x 0.15/1e6 = 0.01851855 needs 7 significant digits; a 3-digit thread context must not round it.
    usage = Usage(input_tokens=123_457, output_tokens=0)
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        quote = catalog.quote("openai", "gpt-4o-mini", usage, at=NOW)
    assert quote.amount == d("0.01851855")


def test_no_usage_costs_zero_but_is_priced(catalog: PriceCatalog) -> None:
    quote = catalog.quote("openai", "gpt-4o-mini", Usage(), at=NOW)
    assert quote.status is PricingStatus.PRICED
    assert quote.amount == 0
    assert dict(quote.components) == {}


def test_resolved_price_is_cached_per_window(catalog: PriceCatalog, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, str, datetime]] = []
    original = catalog._resolver.resolve

    def counting(provider: str, model: str, tier: str, at: datetime):  # type: ignore[no-untyped-def]
        calls.append((provider, model, tier, at))
        return original(provider, model, tier, at)

    monkeypatch.setattr(catalog._resolver, "resolve", counting)
    for _ in range(50):
        catalog.quote("openai", "gpt-4o-mini", Usage(10, 10), at=NOW)
    assert len(calls) == 1


def test_concurrent_quotes_agree(catalog: PriceCatalog) -> None:
    usage = Usage(input_tokens=10_000, output_tokens=1_000, cache_read_input_tokens=2_000)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.extend(catalog.quote("openai", "gpt-4o-mini", usage, at=NOW).amount for _ in range(200))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [d("0.00195")] * 1600
