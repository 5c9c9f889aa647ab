"""Bedrock streams whose counts are not counts (negative, absurd) are unpriced, never a priced zero; the caller
gets every event."""

from __future__ import annotations

import json

import pytest

from otel_ai_cost.contract import Cost, PricingReason, PricingStatus
from otel_ai_cost.ledger.from_span import record_from_span
from otel_ai_cost.pricing.usage import MAX_TOKEN_COUNT
from otel_ai_cost.stand_in.bedrock_api import BedrockScenario

SONNET_US = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
NOVA_LITE_EU = "eu.amazon.nova-lite-v1:0"
MSGS = [{"role": "user", "content": [{"text": "hi"}]}]
ANTHROPIC_BODY = json.dumps(
    {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
)


def assert_unpriced(span) -> None:
    assert span.attributes[Cost.PRICING_STATUS] == PricingStatus.UNPRICED.value
    assert span.attributes[Cost.PRICING_REASON] == PricingReason.MALFORMED_USAGE.value
    assert Cost.AMOUNT not in span.attributes
    assert record_from_span(span) is not None


@pytest.mark.parametrize("bad", [-5, MAX_TOKEN_COUNT + 1])
def test_converse_stream(bad, client, bedrock, telemetry):
    bedrock.push(BedrockScenario(output_tokens=bad, text="a b"))
    response = client.converse_stream(modelId=NOVA_LITE_EU, messages=MSGS)
    events = list(response["stream"])
    assert any("metadata" in e for e in events)
    assert_unpriced(telemetry.span())


@pytest.mark.parametrize("bad", [-5, MAX_TOKEN_COUNT + 1])
def test_invoke_model_stream(bad, client, bedrock, telemetry):
    bedrock.push(BedrockScenario(input_tokens=bad, text="a b"))
    response = client.invoke_model_with_response_stream(modelId=SONNET_US, body=ANTHROPIC_BODY)
    chunks = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    assert chunks[-1]["type"] == "message_stop"
    assert_unpriced(telemetry.span())


def test_invoke_model_negative_token_header(client, bedrock, telemetry):
    bedrock.push(BedrockScenario(input_tokens=-5))
    response = client.invoke_model(modelId=SONNET_US, body=ANTHROPIC_BODY)
    assert json.loads(response["body"].read())["usage"]["input_tokens"] == -5
    assert_unpriced(telemetry.span())
