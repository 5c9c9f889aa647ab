"""A Gemini stream whose usage is not a count (negative, absurd) is unpriced, never a priced zero; the caller gets
every chunk."""

from __future__ import annotations

import pytest

from otel_ai_cost.contract import Cost, PricingReason, PricingStatus
from otel_ai_cost.ledger.from_span import record_from_span
from otel_ai_cost.pricing.usage import MAX_TOKEN_COUNT
from otel_ai_cost.stand_in.gemini_api import GeminiScenario


@pytest.mark.parametrize("bad", [-5, MAX_TOKEN_COUNT + 1])
def test_generate_content_stream(bad, client, gemini, telemetry):
    gemini.push(GeminiScenario(candidates_tokens=bad, text="a b c"))
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="x"))
    assert "".join(c.text or "" for c in chunks) == "a b c"
    span = telemetry.span()
    assert span.attributes[Cost.PRICING_STATUS] == PricingStatus.UNPRICED.value
    assert span.attributes[Cost.PRICING_REASON] == PricingReason.MALFORMED_USAGE.value
    assert Cost.AMOUNT not in span.attributes
    assert record_from_span(span) is not None


def test_cached_content_beyond_the_prompt(client, gemini, telemetry):
    gemini.push(GeminiScenario(prompt_tokens=10, cached_tokens=50))
    client.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert telemetry.span().attributes[Cost.PRICING_STATUS] == PricingStatus.UNPRICED.value
