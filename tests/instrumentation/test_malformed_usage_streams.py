"""Streams whose usage is malformed are unpriced, never a priced zero, and the caller gets every chunk (OpenAI and
Anthropic streams through the stand-in; Bedrock and Gemini streams are in their own directories)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from otel_ai_cost.contract import Cost, PricingReason, PricingStatus
from otel_ai_cost.ledger.from_span import record_from_span
from otel_ai_cost.stand_in import Scenario

MSGS = [{"role": "user", "content": "hi"}]


def assert_unpriced(span) -> None:
    assert span.attributes[Cost.PRICING_STATUS] == PricingStatus.UNPRICED.value
    assert span.attributes[Cost.PRICING_REASON] == PricingReason.MALFORMED_USAGE.value
    assert Cost.AMOUNT not in span.attributes
    assert record_from_span(span) is not None


@pytest.mark.parametrize("bad", [-5, [3], 2.5, "abc"])
def test_openai_chat_stream(bad, stand_in, telemetry):
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="k", max_retries=0)
    stand_in.push(Scenario(text=["a", "b"], usage_extra={"completion_tokens": bad}))
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ab"
    assert_unpriced(telemetry.span())


@pytest.mark.parametrize("bad", [-5, 10**12])
def test_openai_responses_stream(bad, stand_in, telemetry):
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="k", max_retries=0)
    stand_in.push(Scenario(text="a b", usage_extra={"output_tokens": bad}))
    events = list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    assert_unpriced(telemetry.span())


# The SDK coerces "12" in a stream (a valid count then); its own stream accumulator warns about the fraction.
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
@pytest.mark.parametrize("bad", [-5, 2.5])
def test_anthropic_stream(bad, stand_in, telemetry):
    client = anthropic.Anthropic(base_url=stand_in.anthropic_base_url, api_key="k", max_retries=0)
    stand_in.push(Scenario(text="a b", input_tokens=bad))
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=10, messages=MSGS) as stream:
        assert stream.get_final_text() == "a b"
    assert_unpriced(telemetry.span())
