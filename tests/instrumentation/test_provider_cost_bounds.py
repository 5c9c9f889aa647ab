"""A provider-reported cost beyond what any one call can cost (the ledger's per-record bound) is not believed: the
call is priced from the catalog instead, so it still reaches the ledger with a real figure (issue 10, item 4: the
same class of defect as absurd token counts)."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from otel_ai_cost.contract import Cost, CostSource, PricingStatus
from otel_ai_cost.ledger.from_span import record_from_span
from otel_ai_cost.ledger.limits import MAX_AMOUNT_USD
from otel_ai_cost.stand_in import Scenario

MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture
def xai(monkeypatch, stand_in, request) -> openai.OpenAI:
    monkeypatch.setenv("OTEL_AI_COST_PROVIDER_HOSTS", f"127.0.0.1:{stand_in.port}/xai=x_ai")
    request.getfixturevalue("telemetry")  # instrumented after the variable is set
    return openai.OpenAI(base_url=f"{stand_in.url}/xai/v1", api_key="xai-test-key", max_retries=0)


@pytest.mark.parametrize("ticks", [10**30, int(MAX_AMOUNT_USD) * 10**10 + 1])
def test_an_absurd_provider_cost_falls_back_to_the_catalog(ticks, xai, stand_in, telemetry):
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200, usage_extra={"cost_in_usd_ticks": ticks}))
    response = xai.chat.completions.create(model="grok-4", messages=MSGS)
    assert response.usage.cost_in_usd_ticks == ticks  # the caller still sees what xAI sent
    span = telemetry.span()
    assert span.attributes[Cost.PRICING_STATUS] == PricingStatus.PRICED.value
    assert span.attributes[Cost.SOURCE] == CostSource.LOCAL.value
    assert Decimal(span.attributes[Cost.AMOUNT]) < 1
    assert record_from_span(span) is not None


def test_a_cost_at_the_bound_is_believed(xai, stand_in, telemetry):
    ticks = int(MAX_AMOUNT_USD) * 10**10
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200, usage_extra={"cost_in_usd_ticks": ticks}))
    xai.chat.completions.create(model="grok-4", messages=MSGS)
    attributes = telemetry.span().attributes
    assert attributes[Cost.SOURCE] == CostSource.PROVIDER.value
    assert Decimal(attributes[Cost.AMOUNT]) == MAX_AMOUNT_USD
