"""A call that cannot be priced still ends as a marked, recordable span, and only a call that ends up unpriced
warns about it (issue 10, items 4 and 23)."""

from __future__ import annotations

import logging

import openai
import pytest

from otel_ai_cost.contract import Cost, PricingReason, PricingStatus
from otel_ai_cost.ledger.from_span import record_from_span
from otel_ai_cost.pricing.catalog import PriceCatalog
from otel_ai_cost.pricing.model_price import ModelPrice
from otel_ai_cost.stand_in import Scenario
from otel_ai_cost.telemetry.errors import internal_error_counts, reset_internal_errors

MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client(stand_in, telemetry) -> openai.OpenAI:
    return openai.OpenAI(base_url=stand_in.openai_base_url, api_key="k", max_retries=0)


def _boom(*args, **kwargs):
    raise RuntimeError("injected pricing failure")


@pytest.mark.parametrize("target", [(PriceCatalog, "quote"), (ModelPrice, "cost")])
def test_a_pricing_failure_still_reaches_the_ledger_marked(target, client, stand_in, telemetry, monkeypatch):
    monkeypatch.setattr(*target, _boom)
    reset_internal_errors()
    stand_in.push(Scenario(prompt_tokens=10, completion_tokens=3, text="fine"))
    response = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert response.choices[0].message.content == "fine"

    attributes = telemetry.span().attributes
    assert attributes[Cost.PRICING_STATUS] == PricingStatus.UNPRICED.value
    # A failure inside a price (caught by the catalog) is as much a pricing error as one in the catalog itself:
    # the model has a price, so "no_price" would send the reader looking for a price file that is fine.
    assert attributes[Cost.PRICING_REASON] == PricingReason.PRICING_ERROR.value
    assert Cost.AMOUNT not in attributes
    record = record_from_span(telemetry.span())
    assert record is not None and record.pricing_status == PricingStatus.UNPRICED.value
    assert record.input_tokens == 10  # the usage itself was fine, and is kept
    assert sum(internal_error_counts().values()) == 1  # counted (ai_cost.instrumentation.errors), once


def test_a_failure_after_pricing_still_marks_the_span(client, stand_in, telemetry, monkeypatch):
    """Whatever fails while finishing the call, the span ends with a pricing status, so the ledger records it."""
    from otel_ai_cost.telemetry import recorder

    monkeypatch.setattr(recorder, "_error_type", _boom)
    stand_in.push(Scenario(status=400))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    span = telemetry.span()
    assert span.attributes[Cost.PRICING_STATUS] == PricingStatus.NO_USAGE.value
    assert record_from_span(span) is not None


def test_unknown_model_is_unpriced_with_its_reason(client, stand_in, telemetry):
    stand_in.push(Scenario(model="gpt-9-ultra", prompt_tokens=10, completion_tokens=3))
    client.chat.completions.create(model="gpt-9-ultra", messages=MSGS)
    attributes = telemetry.span().attributes
    assert attributes[Cost.PRICING_STATUS] == PricingStatus.UNPRICED.value
    assert attributes[Cost.PRICING_REASON] == PricingReason.NO_PRICE.value


def test_no_warning_for_a_dated_response_model_priced_from_the_request_model(client, stand_in, telemetry, caplog):
    stand_in.push(Scenario(model="gpt-4o-2024-07-18", prompt_tokens=10, completion_tokens=3))
    with caplog.at_level(logging.WARNING):
        client.chat.completions.create(model="gpt-4o", messages=MSGS)
    attributes = telemetry.span().attributes
    assert attributes[Cost.PRICING_STATUS] == PricingStatus.PRICED.value
    assert Cost.PRICING_REASON not in attributes
    assert [r.getMessage() for r in caplog.records if "cannot price" in r.getMessage()] == []


def test_a_call_that_ends_unpriced_still_warns_once(client, stand_in, telemetry, caplog):
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            stand_in.push(Scenario(model="gpt-9-warns-2030-01-01", prompt_tokens=10, completion_tokens=3))
            client.chat.completions.create(model="gpt-9-warns", messages=MSGS)
    warnings = [r.getMessage() for r in caplog.records if "cannot price" in r.getMessage()]
    assert warnings == ["cannot price openai model 'gpt-9-warns': no price for openai model 'gpt-9-warns'"]


def test_malformed_usage_warns_once_per_field(client, stand_in, telemetry, caplog, monkeypatch):
    from otel_ai_cost.telemetry import recorder

    monkeypatch.setattr(recorder, "_warned_malformed", set())  # other tests' warnings are process-wide
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            stand_in.push(Scenario(usage_extra={"prompt_tokens": -5}))
            client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    warnings = [r.getMessage() for r in caplog.records if "not a token count" in r.getMessage()]
    assert len(warnings) == 1 and "prompt_tokens=-5" in warnings[0]
    assert all(s.attributes[Cost.PRICING_STATUS] == PricingStatus.UNPRICED.value for s in telemetry.spans())
