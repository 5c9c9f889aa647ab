"""Never a silent $0: what cannot be priced is UNPRICED, warned about once, and never raises."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest
from pricing_helpers import NOW

from otel_ai_cost.contract import PricingStatus
from otel_ai_cost.pricing.catalog import PriceCatalog
from otel_ai_cost.pricing.usage import Usage

LOGGER = "otel_ai_cost.pricing"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def test_unknown_model_is_unpriced_with_exactly_one_warning(
    catalog: PriceCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for _ in range(5):
        quote = catalog.quote("openai", "gpt-9-ultra", Usage(1_000, 100), at=NOW)
        assert quote.status is PricingStatus.UNPRICED
        assert quote.amount is None
        assert dict(quote.components) == {}
        assert quote.version == catalog.version
    # A different unknown model gets its own (single) warning.
    for _ in range(3):
        catalog.quote("anthropic", "claude-unknown-9", Usage(1_000, 100), at=NOW)
    messages = _warnings(caplog)
    assert len(messages) == 2
    assert "gpt-9-ultra" in messages[0]
    assert "claude-unknown-9" in messages[1]


def test_unknown_provider_is_unpriced(catalog: PriceCatalog) -> None:
    # Our provider ids are OTel ones: genai-prices' "x-ai" or a made-up id is not guessed at.
    assert catalog.quote("acme", "gpt-4o-mini", Usage(1_000, 100), at=NOW).status is PricingStatus.UNPRICED
    assert catalog.quote("azure.ai.openai", "my-deployment", Usage(1, 1), at=NOW).amount is None


def test_usage_of_a_class_without_a_price_is_unpriced_not_zero(
    catalog: PriceCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    # text-embedding-3-small has an input price only: output tokens cannot be priced.
    caplog.set_level(logging.WARNING, logger=LOGGER)
    assert catalog.quote("openai", "text-embedding-3-small", Usage(1_000, 0), at=NOW).status is PricingStatus.PRICED
    for _ in range(2):
        quote = catalog.quote("openai", "text-embedding-3-small", Usage(1_000, 10), at=NOW)
        assert (quote.status, quote.amount) == (PricingStatus.UNPRICED, None)
    messages = _warnings(caplog)
    assert len(messages) == 1 and "no price for output" in messages[0]


def test_web_search_without_a_price_is_unpriced(catalog: PriceCatalog) -> None:
    # grok-4 has no web-search price in genai-prices and no provider default here.
    usage = Usage(1_000, 100, web_search_requests=1)
    assert catalog.quote("x_ai", "grok-4", usage, at=NOW).status is PricingStatus.UNPRICED


@pytest.mark.parametrize(
    ("provider", "model", "usage", "at", "service_tier"),
    [
        ("openai", "gpt-4o-mini", None, NOW, None),
        ("openai", "gpt-4o-mini", Usage(-5, 10), NOW, None),
        ("openai", "gpt-4o-mini", Usage(10, 10), None, None),
        ("openai", "gpt-4o-mini", Usage(10, 10), "2026-01-01", None),
        (None, "gpt-4o-mini", Usage(10, 10), NOW, None),
        ("openai", None, Usage(10, 10), NOW, None),
        ("openai", "gpt-4o-mini", Usage(10, 10), NOW, ["priority"]),
        ("openai", "gpt-4o-mini", Usage(input_tokens=1.5, output_tokens=1), NOW, None),  # type: ignore[arg-type]
    ],
)
def test_bad_input_never_raises(
    catalog: PriceCatalog, provider: Any, model: Any, usage: Any, at: Any, service_tier: Any
) -> None:
    quote = catalog.quote(provider, model, usage, at=at, service_tier=service_tier)
    assert quote.status is PricingStatus.UNPRICED
    assert quote.amount is None


def test_resolve_returns_none_for_unknown_models(catalog: PriceCatalog) -> None:
    assert catalog.resolve("openai", "gpt-9-ultra", at=NOW) is None
    assert catalog.resolve("openai", "gpt-4o-mini", at=datetime(2026, 1, 1)) is not None
